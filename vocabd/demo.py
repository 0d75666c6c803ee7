"""`vocabd demo [DIR]`: a demo workspace built from `vocabd/resources/demo/`, ready for the whole chain.

Honest about what it is: the demo user's "recordings" are espeak-ng speech in one fixed voice
(no real person is recorded in this repository); the safety set is espeak-ng in another voice
plus the one real human recording shipped in the moonshine-cpp wheel; the replay pool is
espeak-ng in two more voices. The synthetic training speech comes from the configured backend
(piper on Linux). None of the demo voices is used by the synthesizer.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.manifest import Clip, write_manifest
from vocabd.resources import resource_text
from vocabd.workspace import SAFETY_EVAL, Workspace, init_workspace

log = get_logger(__name__)

USER_VOICE = "en-us+m4"  # "the user"
SAFETY_VOICE = "en-gb-x-rp+f3"
REPLAY_VOICES = ("en-gb+m2", "en-us+f4")
BECKETT_TEXT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."

DEMO_CONFIG = """\
# The demo workspace: the real offline base model, phase 1 at the defaults and a shortened phase 2
# (60 clips, 120 steps) so the whole chain fits in about 15 minutes on 2 CPU cores.
[model]
base = "moonshine-cpp"

[full]
clips = 60
max_steps = 120
eval_interval = 40

[train]
replay = "data/replay.jsonl"
pause_on_battery = false  # someone is watching the demo: it trains on battery too
"""


DEMO_NOTE = """\
# This is a demo workspace

No person was recorded for it. The "user recordings" dropped into inbox/ (rec*.wav + rec*.txt) are
espeak-ng speech in one fixed voice ({user}) reading vocabd/resources/demo/recordings.txt, with each jargon term
in its spoken form. data/safety_eval.jsonl is espeak-ng in another voice ({safety}) plus the one real
human recording in the moonshine-cpp wheel; data/replay.jsonl is espeak-ng in {replay}. The synthetic
training speech comes from the synthesizer the chain picks (piper on Linux), in none of these voices.
Since the "user" and most of the safety set are espeak, the adapter also learns espeak's sound: the
figures show the machinery working, not what a real voice would gain.
"""


def lines(name: str) -> list[str]:
    """The non-comment lines of the packaged demo text `name`."""
    text = resource_text("demo", name)
    return [s.strip() for s in text.splitlines() if s.strip() and not s.startswith("#")]


def spoken(text: str, terms: list[tuple[str, str]]) -> str:
    """What the demo user says for a transcript: each jargon term in its spoken form."""
    for written, say in sorted(terms, key=lambda t: -len(t[0])):
        text = re.sub(rf"(?<!\w){re.escape(written)}(?!\w)", say, text)
    return text


def _speaker(voice: str, rate: int = 165, pitch: int = 50):
    from vocabd.tts import Voice
    from vocabd.tts.espeak import EspeakSynthesizer

    synth = EspeakSynthesizer(voices=(voice,))
    chosen = Voice(name=f"espeak:{voice}", settings={"rate": rate, "pitch": pitch, "peak": 0.8})
    return lambda text: synth.render(text, chosen)


def _say_all(texts: list[str], voice: str, folder: Path, prefix: str, say_as=None) -> list[Clip]:
    speak = _speaker(voice)
    clips = []
    for i, text in enumerate(texts, start=1):
        audio = speak(say_as(text) if say_as else text)
        path = folder / f"{prefix}{i:02d}.wav"
        write_wav(path, audio, SAMPLE_RATE)
        clips.append(Clip(audio=path, text=text, duration=round(len(audio) / SAMPLE_RATE, 3),
                          speaker=f"espeak:{voice}", source="real" if prefix == "rec" else "general", id=path.stem))
    return clips


def create_demo(directory: Path) -> Workspace:
    """Write the demo workspace: config, inbox drops (jargon list + recordings), safety set, replay pool."""
    from vocabd.jargon import parse_jargon

    root = directory.expanduser().resolve()
    if (root / "data" / "chain.json").exists():
        raise VocabdError(f"{root} already holds a demo run; continue it with `vocabd run --foreground -w {root}` "
                          "or pass a new folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocabd.toml").write_text(DEMO_CONFIG, encoding="utf-8")
    ws = init_workspace(root)
    (root / "DEMO.md").write_text(DEMO_NOTE.format(user=USER_VOICE, safety=SAFETY_VOICE,
                                                   replay=" and ".join(REPLAY_VOICES)), encoding="utf-8")
    (ws.inbox / "jargon.txt").write_text(resource_text("demo", "jargon.txt"), encoding="utf-8")
    terms = [(t.written, t.spoken) for t in parse_jargon(ws.inbox / "jargon.txt")]
    recordings = _say_all(lines("recordings.txt"), USER_VOICE, ws.data / "demo-audio", "rec",
                          say_as=lambda text: spoken(text, terms))
    for clip in recordings:  # dropped into the inbox like a user would: audio + same-name transcript
        shutil.move(clip.audio, ws.inbox / clip.audio.name)
        (ws.inbox / f"{clip.audio.stem}.txt").write_text(clip.text + "\n", encoding="utf-8")
    safety = _say_all(lines("safety.txt"), SAFETY_VOICE, ws.data / "demo-audio", "safety")
    safety.append(_beckett(ws))
    write_manifest(ws.manifest(SAFETY_EVAL), safety)
    replay = []
    for n, voice in enumerate(REPLAY_VOICES):
        texts = lines("replay.txt")[n::len(REPLAY_VOICES)]
        replay += _say_all(texts, voice, ws.data / "demo-audio", f"replay{n}-")
    write_manifest(ws.manifest("replay"), replay)
    log.info("demo_created", root=str(root), recordings=len(recordings), safety=len(safety), replay=len(replay),
             note=str(root / "DEMO.md"))
    log.warning("demo_recordings_are_synthetic", voice=f"espeak-ng {USER_VOICE}",
                detail="no person was recorded for the demo; see DEMO.md")
    return ws


def _beckett(ws: Workspace) -> Clip:
    """The real human recording inside the moonshine-cpp wheel (its bundled test clip)."""
    from importlib.util import find_spec

    from vocabd.audio import load_audio

    spec = find_spec("moonshine_cpp")
    if spec is None or spec.origin is None:
        raise VocabdError("moonshine-cpp is not installed (pip install moonshine-cpp==0.1.4)")
    source = Path(spec.origin).parent / "test-data" / "beckett.wav"
    audio = load_audio(source)
    dest = ws.data / "demo-audio" / "beckett.wav"
    write_wav(dest, audio, SAMPLE_RATE)
    return Clip(audio=dest, text=BECKETT_TEXT, duration=round(len(audio) / SAMPLE_RATE, 3), speaker="beckett-reader",
                source="general", id="beckett")
