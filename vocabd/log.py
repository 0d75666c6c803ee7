"""structlog set-up: JSON lines into a log file, readable lines in the terminal.

Library chatter (Python warnings such as transformers' FutureWarnings, and the libraries' own loggers
below ERROR) goes to the log file only: the terminal is for what vocabd has to say.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

LIBRARY_LOGGERS = ("transformers", "peft", "torch", "accelerate", "huggingface_hub")


def configure_logging(log_file: Path | None = None, console: bool = True, level: int = logging.INFO,
                      console_level: int = logging.NOTSET) -> None:
    """One JSON object a line into `log_file`; coloured key=value lines on stderr when `console`
    (only from `console_level` up: a foreground chain shows its live lines, warnings and errors)."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,  # the traceback as text, not `"exc_info": true`
                        structlog.processors.JSONRenderer()],
            foreign_pre_chain=shared))
        handlers.append(file_handler)
    if console:
        console_handler = StderrHandler()
        console_handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processor=structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()), foreign_pre_chain=shared))
        console_handler.addFilter(keep_library_chatter_off_terminal)
        console_handler.setLevel(console_level)
        handlers.append(console_handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("huey", "watchdog", "urllib3", "httpx", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    route_library_logging()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now, so a rich Live display that redirects it stays intact."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def keep_library_chatter_off_terminal(record: logging.LogRecord) -> bool:
    """Warnings and library log lines below ERROR belong in the log file, not the user's terminal."""
    library = record.name.split(".")[0] in LIBRARY_LOGGERS or record.name == "py.warnings"
    return not library or record.levelno >= logging.ERROR


def route_library_logging() -> None:
    """Send transformers' log lines through our handlers (it writes to stderr itself by default).

    Call again after importing transformers; a no-op (and no import) while it is not loaded."""
    if "transformers" not in sys.modules:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()  # "Loading weights" bars on every model load


def get_logger(name: str = "vocabd") -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
