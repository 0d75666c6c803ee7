"""The synthesize stage's speech rendering in its own short-lived process
(`python -P -m vocabd.synthesis.worker REQUEST.json RESULT.json`, a SynthesisRequest in, a SynthesisResult
out): piper's onnxruntime, mlx and the general pool's synthesis never load into the daemon,
which held 140 MB (350 MB at its peak) after a phase-1 synthesis in its own process (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocabd.codec import decode
from vocabd.errors import VocabdError
from vocabd.workspace import PHASES


@dataclass
class SynthesisRequest:
    workspace: str
    phase: str
    count: int  # clips for the phase's training set
    heldout_count: int  # clips for the held-out synthetic set, made when there are no held-out recordings


def handle(data: dict[str, Any]) -> dict[str, Any]:
    from vocabd.evaluation.runner import primary_set
    from vocabd.general.pool import ensure_pool
    from vocabd.log import get_logger
    from vocabd.manifest import has_rows
    from vocabd.synthesis.synthesize import no_jargon_synthesis, synthesize, synthesize_heldout
    from vocabd.workspace import open_workspace

    request = decode(SynthesisRequest, data, "the synthesis request")
    if request.phase not in PHASES:
        raise VocabdError(f"the synthesis request's phase is {request.phase!r}, not one of {', '.join(PHASES)}")
    ws, phase = open_workspace(Path(request.workspace)), request.phase
    result = synthesize(ws, phase, count=request.count, progress=False) if ws.has_jargon \
        else no_jargon_synthesis(ws, phase)
    ensure_pool(ws, progress=False)
    primary, kind = primary_set(ws)
    if kind == "synthetic" and (phase == "mini" or not has_rows(primary)):
        path = synthesize_heldout(ws, request.heldout_count, progress=False)
        get_logger("vocabd.synthesize").info("heldout_synthesized", manifest=str(path),
                                             reason="no held-out real recordings")
    return result.to_dict()


if __name__ == "__main__":
    from vocabd.child.worker import serve

    serve(handle)
