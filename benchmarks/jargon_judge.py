"""The jargon-only judge: held-out sentences in voices vocabd never trains on (flite, a synthesizer vocabd does not use).

    python benchmarks/jargon_judge.py OUT_DIR [--sentences benchmarks/judge_sentences.txt] [--per-sentence 2]

Each `label | spoken` line of the sentences file is said by `--per-sentence` of flite's voices (kal16, awb,
rms, slt, in turn) and written as 16 kHz WAV plus OUT_DIR/judge.jsonl (a vocabd manifest). Needs the `flite`
program (Debian: apt-get install flite). Score it with `vocabd evaluate OUT_DIR/judge.jsonl --jargon LIST`
or benchmarks/bias_sweep.py.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import soundfile as sf

from vocabd.audio import write_wav
from vocabd.manifest import Clip, write_manifest
from vocabd.tts import finish_audio

VOICES = ("kal16", "awb", "rms", "slt")
HERE = Path(__file__).parent


def read_sentences(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, _, spoken = (part.strip() for part in line.partition("|"))
            rows.append((label, spoken or label))
    return rows


def say(flite: str, voice: str, text: str, dest: Path) -> Clip:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(raw)], check=True, capture_output=True)
        audio, rate = sf.read(raw, dtype="float32")
    audio = finish_audio(audio, rate)
    write_wav(dest, audio)
    return Clip(audio=dest.resolve(), text="", duration=round(len(audio) / 16000, 3), speaker=f"flite:{voice}",
                source="judge", id=dest.stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sentences", type=Path, default=HERE / "judge_sentences.txt")
    parser.add_argument("--per-sentence", type=int, default=2)
    args = parser.parse_args()
    flite = shutil.which("flite")
    if flite is None:
        raise SystemExit("flite is not installed (apt-get install flite)")
    args.out.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, (label, spoken) in enumerate(read_sentences(args.sentences)):
        for k in range(args.per_sentence):
            voice = VOICES[(i + k) % len(VOICES)]
            name = hashlib.sha256(f"{voice}:{spoken}".encode()).hexdigest()[:16]
            clip = say(flite, voice, spoken, args.out / f"{name}.wav")
            clip.text = label
            clip.extra = {"spoken": spoken}
            clips.append(clip)
    write_manifest(args.out / "judge.jsonl", clips)
    print(f"{args.out / 'judge.jsonl'}: {len(clips)} clips, {sum(c.duration for c in clips) / 60:.1f} min")


if __name__ == "__main__":
    main()
