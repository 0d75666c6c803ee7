"""`FAILED.md`: the one format of a failure note, whoever writes it (a chain stage through chain/failure.py,
or the trainer itself through training/run_folder.py): what failed and when, the error, what to do, the log
tails and the traceback."""

from __future__ import annotations

import traceback
from collections import deque
from pathlib import Path
from typing import Sequence

from vocabd.clock import now_iso
from vocabd.files import write_text

LOG_TAIL_LINES = 30


def write_failed_note(path: Path, heading: str, facts: Sequence[str], error: BaseException, advice: str,
                      logs: Sequence[Path]) -> Path:
    """Write `path` (a run folder's FAILED.md); `facts` are short "key: value" lines under the heading."""
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)).strip()
    lines = [f"# {heading}", "", f"- when: {now_iso()}", *(f"- {fact}" for fact in facts), "",
             "## Error", "", "```", f"{type(error).__name__}: {error}", "```", "",
             "## What to do", "", advice, "",
             "## Log tail", "", *_log_sections(logs),
             "## Traceback", "", "```", trace, "```", ""]
    write_text(path, "\n".join(lines))
    return path


def _log_sections(logs: Sequence[Path]) -> list[str]:
    sections: list[str] = []
    for log in logs:
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
