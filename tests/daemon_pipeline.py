"""A small, real pipeline module for the daemon tests (`VOCABD_PIPELINE=daemon_pipeline`).

It has the contract of `vocabd.jobs.pipeline` (run_stage, start_chain creating the chain record,
chain_state, TransientError, StageFailed, StageOutcome) but each stage only appends to `stages.log` in the workspace, so the tests
exercise the real queue, consumer and watcher in seconds. Behaviour is steered by files in the
workspace root: `slow_<stage>` (seconds to sleep, read once per run), `fail_<phase>_<stage>` (raise
StageFailed after writing FAILED.md), `transient_<stage>` (raise TransientError that many times).
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timezone
from dataclasses import dataclass

from vocabd.errors import VocabdError
from vocabd.jobs import state
from vocabd.workspace import Workspace

STAGES = ("synthesize", "mix", "train", "poll", "evaluate")


class TransientError(VocabdError):
    pass


class StageFailed(VocabdError):
    pass


@dataclass
class StageOutcome:
    next_stage: str | None
    next_phase: str | None = None
    delay: float = 0.0


def _log(ws: Workspace, line: str) -> None:
    with (ws.root / "stages.log").open("a", encoding="utf-8") as f:
        f.write(f"{line}\n")
        f.flush()


def start_chain(ws: Workspace) -> tuple[str, str, str]:
    if not (ws.data / "jargon.txt").exists():
        raise VocabdError(f"nothing to train on in {ws.data}")
    count = len(list(ws.root.glob("chain-*.started"))) + 1
    name = f"chain{count}"
    (ws.root / f"chain-{count}.started").write_text((ws.data / "jargon.txt").read_text())
    state.new_chain(ws, name, state.Material(jargon=True))
    _log(ws, f"{name} start")
    return name, "mini", "synthesize"


def run_stage(ws: Workspace, name: str, phase: str, stage: str) -> StageOutcome:
    _log(ws, f"{name} {phase} {stage} begin")
    slow = ws.root / f"slow_{stage}"
    if slow.exists():
        how = slow.read_text()
        slow.unlink()  # the re-run after an interruption is fast
        if how.startswith("child:"):  # the work happens in a child process, like an evaluation
            child = subprocess.Popen(["sleep", how.split(":")[1]])
            (ws.root / "child.pid").write_text(str(child.pid))
            child.wait()
        else:
            time.sleep(float(how))
    transient = ws.root / f"transient_{stage}"
    if transient.exists():
        left = int(transient.read_text())
        if left > 0:
            transient.write_text(str(left - 1))
            _log(ws, f"{name} {phase} {stage} transient")
            raise TransientError(f"{stage} not ready yet")
    if (ws.root / f"fail_{phase}_{stage}").exists():
        run = ws.run_dir(f"{name}_{phase}")
        run.mkdir(parents=True, exist_ok=True)
        (run / "FAILED.md").write_text(f"# {stage} failed\n")
        _log(ws, f"{name} {phase} {stage} failed")
        raise StageFailed(f"{phase}/{stage} failed")
    _log(ws, f"{name} {phase} {stage} end")
    if stage != "evaluate":
        return StageOutcome(STAGES[STAGES.index(stage) + 1], delay=0.2 if stage == "train" else 0.0)
    if phase == "mini":
        return StageOutcome("synthesize", next_phase="full")
    (ws.root / f"{name}.report").write_text("done\n")
    return StageOutcome(None)


def chain_state(ws: Workspace) -> dict:
    log = ws.root / "stages.log"
    lines = log.read_text().splitlines() if log.exists() else []
    starts = sorted(p.stat().st_mtime for p in ws.root.glob("chain-*.started"))
    started = datetime.fromtimestamp(starts[-1], timezone.utc).isoformat() if starts else None
    return {"last_event": lines[-1] if lines else None, "started": started}
