"""`vocabd poll NAME`: one screen of progress and an exit code for scripts. Torch-free."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from vocabd.training.run_folder import RunFolder
from vocabd.training.status import RunStatus, read_status

EXIT_CODES = {"finished": 0, "failed": 1, "running": 2, "stalled": 3}
SPARKS = "▁▂▃▄▅▆▇█"


def poll_once(run_dir: Path, stall_seconds: float) -> tuple[str, int]:
    """(screen text, exit code) for the run as it is now."""
    status = read_status(run_dir, stall_seconds)
    return render(RunFolder(run_dir), status), EXIT_CODES[status.state]


def follow(run_dir: Path, stall_seconds: float, interval: float, show: Callable[[str], None]) -> int:
    """Print the screen every `interval` seconds until the run finishes, fails or stalls."""
    while True:
        screen, code = poll_once(run_dir, stall_seconds)
        show(screen)
        if code != EXIT_CODES["running"]:
            return code
        time.sleep(interval)


def render(folder: RunFolder, status: RunStatus) -> str:
    events = folder.read_log()
    losses = [e["loss"] for e in events if e.get("event") == "train"]
    evals = [e for e in events if e.get("event") == "eval"]
    lines = [_headline(folder.name, status), _loss_line(losses), *_eval_lines(evals, status)]
    if status.reason:
        lines.append(f"note: {status.reason}")
    if status.error:
        lines.append(f"error: {status.error}")
    if status.state in ("failed", "stalled"):
        lines.append(f"resume: vocabd run-experiment {folder.name} --resume"
                     + (f"   (details: {folder.failed_file})" if folder.failed_file.exists() else ""))
    return "\n".join(lines)


def _headline(name: str, s: RunStatus) -> str:
    pct = f" ({100 * s.step / s.max_steps:.0f}%)" if s.max_steps else ""
    parts = [f"run {name}: {s.state.upper()}", f"step {s.step}/{s.max_steps or '?'}{pct}"]
    if s.state == "running" and s.eta_seconds is not None:
        parts.append(f"ETA {_duration(s.eta_seconds)}")
    if s.seconds_per_step:
        parts.append(f"{s.seconds_per_step:.2f} s/step")
    if s.pid and s.state in ("running", "stalled"):
        parts.append(f"pid {s.pid}, heartbeat {_duration(max(0.0, time.time() - s.heartbeat))} ago")
    return "  ".join(parts)


def _loss_line(losses: list[float]) -> str:
    if not losses:
        return "loss: no training steps yet"
    window = max(1, min(20, len(losses) // 4 or 1))
    first, last = _mean(losses[:window]), _mean(losses[-window:])
    return f"loss: {first:.3f} -> {last:.3f} (mean of {window} steps)  {sparkline(losses)}"


def _eval_lines(evals: list[dict[str, Any]], s: RunStatus) -> list[str]:
    if not evals:
        return ["dev WER: not evaluated yet"]
    dev = "  ".join(f"{e['step']}:{e['dev_wer']:.3f}" for e in evals[-8:])
    lines = [f"dev WER (normalized) by step: {dev}"]
    replay = [e for e in evals[-8:] if e.get("replay_dev_wer") is not None]
    if replay:
        lines.append("replay-dev WER by step:       " + "  ".join(f"{e['step']}:{e['replay_dev_wer']:.3f}"
                                                            for e in replay))
    if s.best_step is not None or evals[-1].get("best_step") is not None:
        best_step = s.best_step if s.best_step is not None else evals[-1]["best_step"]
        best = next((e for e in evals if e["step"] == best_step), None)
        if best:
            lines.append(f"best: step {best_step}, dev WER {best['dev_wer']:.3f}")
    return lines


def sparkline(values: list[float], width: int = 30) -> str:
    """The curve in `width` block characters (each the mean of its slice)."""
    if len(values) > width:
        size = len(values) / width
        values = [_mean(values[int(i * size): max(int(i * size) + 1, int((i + 1) * size))]) for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - low) / span * len(SPARKS)))] for v in values)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
