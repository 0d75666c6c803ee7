"""The synthesize stage's speech rendering in its own short-lived process
(`python -P -m vocabd.synthesis.worker REQUEST.json RESULT.json`, request `{"workspace", "phase", "count",
"heldout_count"}`): piper's onnxruntime, mlx and the general pool's synthesis never load into the daemon,
which held 140 MB (350 MB at its peak) after a phase-1 synthesis in its own process (docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError


def handle(data: dict[str, Any]) -> dict[str, Any]:
    from vocabd.general.pool import ensure_pool
    from vocabd.evaluation.runner import primary_set
    from vocabd.synthesis.synthesize import synthesize, synthesize_heldout
    from vocabd.log import get_logger
    from vocabd.manifest import has_rows
    from vocabd.workspace import open_workspace

    if not isinstance(data.get("workspace"), str) or data.get("phase") not in ("mini", "full"):
        raise VocabdError("a synthesis request names a workspace and a phase (mini or full)")
    ws, phase = open_workspace(Path(data["workspace"])), data["phase"]
    result = synthesize(ws, phase, count=int(data["count"]), progress=False)
    ensure_pool(ws, progress=False)
    primary, kind = primary_set(ws)
    if kind == "synthetic" and (phase == "mini" or not has_rows(primary)):
        path = synthesize_heldout(ws, int(data["heldout_count"]), progress=False)
        get_logger("vocabd.synthesize").info("heldout_synthesized", manifest=str(path),
                                             reason="no held-out real recordings")
    return result.to_dict()


if __name__ == "__main__":
    from vocabd.child.worker import serve

    serve(handle)
