"""One live line for the running stage of a chain, for `vocabd run --foreground`, `vocabd demo` and
`vocabd status --follow`.

The line is built from what the workspace records (`data/chain.json`, and `runs/<run>/status.json` while
training), so the foreground chain and a second terminal following the daemon show the same thing:

    [phase 1 mini] train adapt-20261201-221000_mini  step 12/50  loss 0.812  best dev WER 0.231  0:45, ETA 1:10

On a terminal the line is redrawn in place (rich Live); elsewhere (a log, a pipe) it is printed as a plain
line when it changed, at most every `Timing.progress` seconds (`VOCABD_PROGRESS_S`, 30), and once at the end.
Torch-free.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from datetime import datetime
from types import TracebackType
from typing import Any, Callable

from rich.console import Console
from rich.live import Live
from rich.text import Text

from vocabd.errors import VocabdError
from vocabd.timing import Timing
from vocabd.workspace import Workspace, phase_name

PHASE_LABELS = {"mini": "phase 1 mini", "full": "phase 2 full"}
TRAINING_STAGES = ("train", "poll")


def clock(seconds: float | None) -> str:
    """0:45, 12:03, 1:02:03."""
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def training_fields(status: Any, now: float) -> list[str]:
    """step/total, loss, best dev WER so far, elapsed and ETA from a run's `RunStatus`."""
    fields = [f"step {status.step}/{status.max_steps or '?'}"]
    if status.state == "running" and not status.step and status.loss is None:
        fields.append("starting (loading the model, measuring step 0)")
    else:
        if status.loss is not None:
            fields.append(f"loss {status.loss:.3f}")
        fields.append(f"best dev WER {status.best_dev_wer:.3f}" if status.best_dev_wer is not None
                      else "dev WER not measured yet")
    timing = clock(now - status.started) if status.started else ""
    if status.state == "running" and status.reason:  # paused, or waiting for the machine: no ETA meanwhile
        timing += f", {status.reason}"
    elif status.state == "running" and status.eta_seconds is not None and status.step:
        timing += f", ETA {clock(status.eta_seconds)}"
    elif status.state != "running":
        timing += f", {status.state}"
    fields.append(timing.strip(", "))
    return fields


def stage_line(ws: Workspace, chain: dict[str, Any], since: float | None, now: float | None = None) -> str:
    """The line for the chain's current stage; `since` is when that stage began (unix time)."""
    now = time.time() if now is None else now
    phase, stage = chain.get("phase"), chain.get("stage")
    head = f"[{PHASE_LABELS.get(phase, phase)}] {'train' if stage == 'poll' else stage}"
    if stage in TRAINING_STAGES:
        status = _training_status(ws, chain)
        if status is not None:
            return "  ".join([f"{head} {_experiment(chain)}", *training_fields(status, now)])
    return f"{head}  {chain.get('state', 'running')} {clock(now - since) if since else ''}".rstrip()


def chain_stage_since(chain: dict[str, Any]) -> float | None:
    """When the chain's current stage began, as far as chain.json tells (its last update)."""
    try:
        return datetime.fromisoformat(chain["updated"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _experiment(chain: dict[str, Any]) -> str:
    return phase_name(chain.get("name") or "?", "mini" if chain.get("phase") == "mini" else "full")


def _training_status(ws: Workspace, chain: dict[str, Any]) -> Any:
    from vocabd.training.status import read_status

    try:
        return read_status(ws.run_dir(_experiment(chain)), ws.config.train.stall_seconds)
    except VocabdError:  # not launched yet, or a torn file: the plain stage line says enough
        return None


class LiveLine:
    """A line that follows a running stage until the `with` block ends, then stays as its final state."""

    def __init__(self, console: Console, text: Callable[[], str], every: float | None = None):
        self.console, self._text = console, text
        self.every = Timing.from_env().progress if every is None else every
        self._last, self._printed, self._final = "", None, None
        self._stop = threading.Event()
        self._live: Live | None = None
        self._thread: threading.Thread | None = None

    def text(self) -> str:
        try:
            self._last = self._text()
        except Exception:  # a file mid-rename or gone: keep showing the last good line
            pass
        return self._last

    def finish(self, text: str) -> None:
        """The line to leave behind when the block ends (e.g. the stage's outcome)."""
        self._final = text

    def __rich__(self) -> Text:
        return Text(self.text(), no_wrap=True, overflow="ellipsis")

    def __enter__(self) -> "LiveLine":
        if self.console.is_terminal:
            self._streams = sys.stdout, sys.stderr
            live_console = Console(file=self.console.file, force_terminal=True, width=self.console.width,
                                   color_system=self.console.color_system)
            self._live = Live(self, console=live_console, refresh_per_second=2, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
            sys.stdout, sys.stderr = (LinesAbove(live_console, stream) for stream in self._streams)
        else:
            self._thread = threading.Thread(target=self._print_periodically, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        final = self._final or self.text()
        if kind is not None:
            final += "  (stopped)" if kind is KeyboardInterrupt else "  (failed)"
        if self._live is not None:
            for stream in (sys.stdout, sys.stderr):
                if isinstance(stream, LinesAbove):
                    stream.flush_rest()
            sys.stdout, sys.stderr = self._streams
            self._live.update(Text(final, no_wrap=True, overflow="ellipsis"), refresh=True)
            self._live.stop()
            return
        if self._thread is not None:
            self._thread.join()
        if final != self._printed:
            self.console.print(final, highlight=False, soft_wrap=True, markup=False)

    def _print_periodically(self) -> None:
        printed, printed_at = None, float("-inf")
        while not self._stop.is_set():
            line = self.text()
            if line != printed and time.monotonic() - printed_at >= self.every:
                self.console.print(line, highlight=False, soft_wrap=True, markup=False)
                self._printed, printed, printed_at = line, line, time.monotonic()
            self._stop.wait(min(1.0, self.every))


class LinesAbove(io.TextIOBase):
    """Stands in for stdout/stderr while a live line is drawn: each whole line written (by print, logging
    or another rich Console) is printed above the live line instead of over it.

    Unlike rich's own redirection, other rich Consoles write here too (rich's proxy sends them around it)."""

    def __init__(self, console: Console, real: Any):
        self._console, self._real, self._buffer = console, real, ""

    def write(self, text: str) -> int:
        self._buffer += text
        if "\n" in self._buffer:
            lines, _, self._buffer = self._buffer.rpartition("\n")
            self._console.print(Text.from_ansi(lines), soft_wrap=True)
        return len(text)

    def flush_rest(self) -> None:
        if self._buffer:
            self._console.print(Text.from_ansi(self._buffer), soft_wrap=True)
            self._buffer = ""

    def flush(self) -> None:
        self._real.flush()

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", "utf-8")
