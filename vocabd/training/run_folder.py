"""The run folder `runs/NAME/` (docs/training.md: run folder): config, log, checkpoints, best/, FAILED.md.

Torch-free at import; checkpoints are written by `loop` through `save_checkpoint`'s callback.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vocabd.failure import write_failed_note
from vocabd.files import read_json, read_jsonl, write_text
from vocabd.training.config import RunConfig

STEP_DIR = re.compile(r"^step-(\d+)$")
TRAINER_STATE = "trainer_state.pt"


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    @property
    def log_file(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def stdout_log(self) -> Path:
        return self.root / "stdout.log"

    @property
    def failed_file(self) -> Path:
        return self.root / "FAILED.md"

    def step_dir(self, step: int) -> Path:
        return self.adapters / f"step-{step}"

    # config -----------------------------------------------------------------
    def write_config(self, config: RunConfig) -> None:
        write_text(self.config_file, config.to_json())

    def read_config(self) -> RunConfig:
        return RunConfig.from_file(self.config_file)

    # log.jsonl --------------------------------------------------------------
    def append_log(self, event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 3), **event}
        with open(self.log_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()

    def read_log(self) -> list[dict[str, Any]]:
        """Every whole event; a line cut short by a kill is skipped."""
        return read_jsonl(self.log_file)

    def truncate_log(self, step: int) -> None:
        """Keep only events up to `step`: a resumed run redoes the later steps and logs them again."""
        kept = [e for e in self.read_log() if e.get("step", 0) <= step]
        tmp = self.root / ".log.jsonl.part"
        tmp.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
        tmp.replace(self.log_file)

    # checkpoints ------------------------------------------------------------
    def checkpoints(self) -> list[int]:
        """Steps with a complete checkpoint (adapter + trainer state), oldest first."""
        if not self.adapters.is_dir():
            return []
        steps = []
        for child in self.adapters.iterdir():
            match = STEP_DIR.match(child.name)
            if match and (child / TRAINER_STATE).is_file() and (child / "adapter_config.json").is_file():
                steps.append(int(match.group(1)))
        return sorted(steps)

    def latest_checkpoint(self) -> int | None:
        steps = self.checkpoints()
        return steps[-1] if steps else None

    def save_checkpoint(self, step: int, write: Callable[[Path], None]) -> Path:
        """`write(folder)` fills a temporary folder, renamed into place only once complete."""
        self.adapters.mkdir(parents=True, exist_ok=True)
        tmp = self.adapters / f".step-{step}.part"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        final = self.step_dir(step)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return final

    def drop_checkpoints_after(self, step: int) -> None:
        """On resume: checkpoints newer than the one resumed from belong to a future that is redone."""
        for later in [s for s in self.checkpoints() if s > step]:
            shutil.rmtree(self.step_dir(later), ignore_errors=True)
        for leftover in self.adapters.glob(".step-*.part") if self.adapters.is_dir() else []:
            shutil.rmtree(leftover, ignore_errors=True)

    def promote_best(self, step: int, info: dict[str, Any]) -> None:
        """Copy the adapter of `step` to best/ (adapter files only, not the optimizer state)."""
        tmp = self.root / ".best.part"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.step_dir(step), tmp, ignore=shutil.ignore_patterns(TRAINER_STATE))
        (tmp / "best.json").write_text(json.dumps({"step": step, **info}, indent=2), encoding="utf-8")
        old = self.root / ".best.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.best.exists():
            self.best.rename(old)
        tmp.rename(self.best)
        shutil.rmtree(old, ignore_errors=True)

    def best_info(self) -> dict[str, Any] | None:
        return read_json(self.best / "best.json")

    # failure ----------------------------------------------------------------
    def write_failed(self, what: str, error: BaseException, hint: str) -> None:
        write_failed_note(self.failed_file, f"{self.name}: {what}", [f"run: {self.root}"], error, hint,
                          [self.stdout_log, self.log_file])
