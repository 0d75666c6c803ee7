"""Evaluate a model (and adapter) on a manifest: `vocabd evaluate` in this process, or a worker process for
the chain's evaluate stage (`python -P -m vocabd.evaluation.worker REQUEST.json RESULT.json`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocabd.codec import decode
from vocabd.errors import VocabdError
from vocabd.workspace import Workspace, open_workspace


@dataclass
class EvalRequest:
    manifest: str
    model: str | None = None  # default: the workspace's base model
    adapter: str | None = None
    jargon: str | None = None  # report recall and false alarms for its terms (and bias decoding to them)
    workspace: str | None = None  # its settings apply (offline fallback, biasing, where audio may lie)
    allow_outside: bool = False
    batch_size: int = 8
    no_bias: bool = False
    progress: bool = False


def evaluate_manifest(request: EvalRequest) -> Any:
    """The EvalResult of `request` (WER raw and normalized, term recall, worst clips, real-time factor)."""
    from vocabd.asr.biasing import configured_decoding
    from vocabd.asr.model import load_asr
    from vocabd.config import Config
    from vocabd.evaluation.evaluate import evaluate_clips
    from vocabd.jargon import parse_jargon
    from vocabd.manifest import audio_root, read_manifest
    from vocabd.training.heavy import heavy_worker

    ws: Workspace | None = open_workspace(Path(request.workspace)) if request.workspace else None
    manifest = Path(request.manifest)
    root = audio_root(manifest, ws.root if ws else None)
    clips, problems = read_manifest(manifest, root=root, allow_outside=request.allow_outside)
    if not clips:
        raise VocabdError(f"{manifest}: no usable clips" + "".join(f"\n  {p}" for p in problems))
    terms = parse_jargon(Path(request.jargon)) if request.jargon else []
    model = request.model or (ws.config.model.base if ws else None)
    adapter = Path(request.adapter) if request.adapter else None
    with heavy_worker("evaluate"):  # one torch-heavy worker at a time on this machine
        asr = load_asr(model, adapter, ws.config.model.offline_fallback if ws else True)
        asr = configured_decoding(asr, terms, ws.config if ws else Config(), request.no_bias)
        result = evaluate_clips(asr, clips, [t.written for t in terms], request.batch_size, progress=request.progress)
    result.skipped = [str(p) for p in problems]
    return result


def handle(data: dict[str, Any]) -> dict[str, Any]:
    request = decode(EvalRequest, data, "the evaluation request")
    if request.workspace:
        from vocabd.log import configure_logging

        configure_logging(Path(request.workspace) / "vocabd.log", console=False)  # library warnings too
    return evaluate_manifest(request).to_dict()


if __name__ == "__main__":
    from vocabd.child.worker import serve

    serve(handle)
