"""`runs/<experiment>/FAILED.md`: what failed, the error, the log tail and what to do next."""

from __future__ import annotations

import traceback
from collections import deque
from pathlib import Path

from vocabd.files import write_text
from vocabd.jobs.state import now_iso
from vocabd.workspace import Workspace

LOG_TAIL_LINES = 30

NEXT_STEPS = {
    "synthesize": (
        "Check the jargon list (`data/jargon.txt`) and the voice sample (`data/voice_ref.wav`) named in the "
        "error. Drop a corrected file into `inbox/` (the daemon restarts the chain) or run "
        "`vocabd synthesize --phase mini` to reproduce the problem in a terminal."
    ),
    "mix": (
        "A manifest in `data/` has bad rows (listed above). Fix or remove the recordings they name and drop "
        "them into `inbox/` again, or run `vocabd mix` to reproduce the problem."
    ),
    "train": (
        "The training process could not start or crashed. Read the run's `stdout.log`, then resume it with "
        "`vocabd run-experiment NAME --resume` or restart the whole chain with `vocabd run --foreground`."
    ),
    "poll": (
        "The training process failed or stalled (see the log tail). Resume it with "
        "`vocabd run-experiment NAME --resume`, then `vocabd run --foreground` continues the chain."
    ),
    "evaluate": (
        "Evaluation of the base model or the adapter failed. Run `vocabd evaluate MANIFEST --adapter "
        "runs/NAME/best --json` to reproduce it; the adapter itself is kept in `runs/NAME/best/`."
    ),
}


def write_failed(ws: Workspace, experiment: str, phase: str, stage: str, error: BaseException) -> Path:
    """Write FAILED.md into the experiment's run folder and return its path."""
    run_dir = ws.run_dir(experiment)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "FAILED.md"
    advice = NEXT_STEPS.get(stage, "See the error above.").replace("NAME", experiment)
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)).strip()
    lines = [
        f"# {experiment}: phase {phase} failed at stage `{stage}`",
        "",
        f"- when: {now_iso()}",
        f"- phase: {phase} ({'phase 1, the chain stopped before phase 2' if phase == 'mini' else 'phase 2'})",
        f"- stage: {stage}",
        "",
        "## Error",
        "",
        "```",
        f"{type(error).__name__}: {error}",
        "```",
        "",
        "## What to do",
        "",
        advice,
        "",
        "## Log tail",
        "",
        *_log_sections(ws, run_dir),
        "## Traceback",
        "",
        "```",
        trace,
        "```",
        "",
    ]
    write_text(path, "\n".join(lines))
    return path


def _log_sections(ws: Workspace, run_dir: Path) -> list[str]:
    sections: list[str] = []
    for log in (run_dir / "stdout.log", run_dir / "log.jsonl", ws.log_file):
        tail = tail_lines(log, LOG_TAIL_LINES)
        if tail:
            sections += [f"`{log}` (last {len(tail)} lines):", "", "```", *tail, "```", ""]
    return sections or ["(no log written yet)", ""]


def tail_lines(path: Path, count: int) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=count)]
    except OSError:
        return []
