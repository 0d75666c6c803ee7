"""Benchmark: does the exported personal model keep what the adapter learned, and how fast is each runtime?

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/export_fidelity.py WORKSPACE JUDGE.jsonl OUT_DIR

`vocabd export --format moonshine-cpp` and `--format onnx` of WORKSPACE's promoted adapter into OUT_DIR, as a
user runs them (each checks itself on the workspace's held-out clips); then, on JUDGE (held-out sentences in
voices training never used, `benchmarks/jargon_judge.py`): the PyTorch adapter and the base without biasing,
onnxruntime and moonshine_cpp on the exports (and moonshine_cpp on the wheel's base model), and `vocabd serve` on
the workspace over HTTP. Prints normalized WER, term recall, agreement with the PyTorch adapter and seconds per
clip for each; writes OUT_DIR/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from vocabd.asr.active import active_model
from vocabd.asr.model import load_asr
from vocabd.asr.offline import wheel_files
from vocabd.asr.transcribe import transcribe
from vocabd.audio import load_audio, write_wav
from vocabd.export.greedy import OnnxTranscriber
from vocabd.export.moonshine_cpp import runtime_transcribe
from vocabd.jargon import parse_jargon
from vocabd.manifest import load_manifest
from vocabd.scoring.metrics import normalize, overall_recall, term_stats, wer
from vocabd.workspace import open_workspace

VOCABD = Path(sys.executable).parent / "vocabd"


def export(root: Path, out: Path, fmt: str) -> dict:
    """`vocabd export` as a user runs it; when its self-check refuses, the refusal is kept and the export made
    unchecked, so that the judge still measures it."""
    start = time.perf_counter()
    command = [str(VOCABD), "export", str(out), "--format", fmt, "-w", str(root)]
    done = subprocess.run(command, capture_output=True, text=True)
    print(f"vocabd export --format {fmt}: {time.perf_counter() - start:.0f} s, exit {done.returncode}\n"
          f"{done.stdout}{done.stderr[-3000:] if done.returncode else ''}", flush=True)
    if done.returncode:
        subprocess.run(command + ["--check-clips", "0"], check=True)
    note = json.loads((out / "vocabd-export.json").read_text(encoding="utf-8"))
    return note | ({"refused": done.stderr[-3000:]} if done.returncode else {})


def pytorch(asr, audios) -> tuple[list[str], float]:
    start = time.perf_counter()
    texts = transcribe(asr, audios, batch_size=1)  # one clip at a time, as the runtimes and serve run
    return texts, time.perf_counter() - start


def onnx(folder: Path, audios) -> tuple[list[str], float]:
    transcriber = OnnxTranscriber(folder)
    start = time.perf_counter()
    texts = [transcriber.transcribe(a) for a in audios]
    return texts, time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, wav: bytes) -> str:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nvocabd\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode() + wav + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "/v1/audio/transcriptions", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())["text"]


def serve(root: Path, wavs: list[Path]) -> tuple[list[str], float]:
    """`vocabd serve` on a free loopback port; the clips one request at a time (the first warms it up)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(VOCABD), "serve", "--port", str(port), "-w", str(root)])
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        post(url, wavs[0].read_bytes())
        start = time.perf_counter()
        texts = [post(url, w.read_bytes()) for w in wavs]
        return texts, time.perf_counter() - start
    finally:
        server.terminate()  # the server started above
        server.wait(timeout=60)


def row(name: str, refs, texts, reference, terms, seconds) -> dict:
    recall = overall_recall(term_stats(refs, texts, terms))
    return {"runtime": name, "wer_normalized": round(wer(refs, texts, normalized=True), 4),
            "term_recall": round(recall, 4) if recall is not None else None,
            "disagreement_with_pytorch_adapter": round(wer(reference, texts, normalized=True), 4),
            "same_normalized_text": sum(normalize(a) == normalize(b) for a, b in zip(texts, reference)),
            "seconds_per_clip": round(seconds / len(refs), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("judge", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--formats", default="moonshine-cpp,onnx", help="Which exports to make and measure.")
    args = parser.parse_args()
    root, out = args.workspace.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    notes = {fmt: export(root, out / fmt, fmt) for fmt in args.formats.split(",")}
    ws = open_workspace(root)
    active = active_model(ws)
    terms = [t.written for t in parse_jargon(ws.jargon)]
    clips = load_manifest(args.judge, allow_outside=True)
    refs, audios = [c.text for c in clips], [load_audio(c.audio) for c in clips]
    print(f"judge: {len(clips)} clips, {sum(len(a) for a in audios) / 16000:.0f} s of audio", flush=True)
    results = {}
    for name, adapter in (("pytorch adapter, no bias", active.adapter), ("pytorch base, no bias", None)):
        results[name] = pytorch(load_asr(active.base, adapter), audios)
    if "onnx" in notes:
        results["onnxruntime on the onnx export"] = onnx(out / "onnx", audios)
    with tempfile.TemporaryDirectory() as tmp:
        wavs = []
        for i, audio in enumerate(audios):  # the runtime reads 16 kHz WAV files
            wavs.append(Path(tmp) / f"{i}.wav")
            write_wav(wavs[-1], audio)
        if "moonshine-cpp" in notes:
            results["moonshine_cpp on the moonshine-cpp export"] = runtime_transcribe(out / "moonshine-cpp", wavs)
        results["moonshine_cpp on the wheel's own base model"] = runtime_transcribe(wheel_files().encoder.parent, wavs)
        results["vocabd serve (HTTP, its default decoding)"] = serve(root, wavs)
    reference = results["pytorch adapter, no bias"][0]
    rows = [row(name, refs, texts, reference, terms, seconds) for name, (texts, seconds) in results.items()]
    for r in rows:
        print(f"{r['runtime']:44} WER {r['wer_normalized']:.4f}  recall {r['term_recall']}  "
              f"disagreement {r['disagreement_with_pytorch_adapter']:.4f}  same {r['same_normalized_text']}/"
              f"{len(refs)}  {r['seconds_per_clip']:.3f} s/clip", flush=True)
    report = {"workspace": str(root), "adapter": str(active.adapter), "judge": str(args.judge), "clips": len(clips),
              "exports": notes, "rows": rows,
              "texts": {name: texts for name, (texts, _) in results.items()}, "refs": refs}
    (out / "fidelity.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
