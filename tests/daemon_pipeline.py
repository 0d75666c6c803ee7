"""A small, real Pipeline for the daemon tests: `python -m daemon_runner start --foreground -w WS` runs the
vocabd CLI with it as the chain's pipeline.

Its `start` creates the chain record like the real one, but each stage only appends to `stages.log` in
the workspace, so the tests exercise the real queue, consumer and watcher in seconds. Behaviour is steered
by files in the workspace root: `slow_<stage>` (seconds to sleep, read once per run), `fail_<phase>_<stage>`
(raise StageFailed after writing FAILED.md), `transient_<stage>` (raise TransientError that many times).
"""

from __future__ import annotations

import subprocess
import time

from vocabd.chain import record as state
from vocabd.chain import spec
from vocabd.chain.spec import StageFailed, StageOutcome, TransientError
from vocabd.chain.stages import Pipeline
from vocabd.errors import VocabdError
from vocabd.workspace import Workspace


def _log(ws: Workspace, line: str) -> None:
    with (ws.root / "stages.log").open("a", encoding="utf-8") as f:
        f.write(f"{line}\n")
        f.flush()


class LoggingPipeline(Pipeline):
    def start(self, ws: Workspace) -> tuple[str, str, str]:
        if not (ws.data / "jargon.txt").exists():
            raise VocabdError(f"nothing to train on in {ws.data}")
        count = len(list(ws.root.glob("chain-*.started"))) + 1
        name = f"chain{count}"
        (ws.root / f"chain-{count}.started").write_text((ws.data / "jargon.txt").read_text())
        state.new_chain(ws, name, state.Material(jargon=True))
        _log(ws, f"{name} start")
        return name, spec.PHASES[0], spec.FIRST_STAGE

    def run(self, ws: Workspace, name: str, phase: str, stage: str) -> StageOutcome:
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
        if stage == "evaluate" and phase == spec.PHASES[-1]:
            (ws.root / f"{name}.report").write_text("done\n")
        outcome = spec.advance(phase, stage)
        outcome.delay = 0.2 if stage == "train" else 0.0
        return outcome


PIPELINE = LoggingPipeline()
