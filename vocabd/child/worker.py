"""How a worker talks to the process that started it: a request JSON in, a result JSON out. Torch-free.

The result file holds `{"ok": true, "result": {...}}` or `{"ok": false, "error": "..."}`: a failure comes
back as the worker's own message, not as a guess from the last lines of its stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

from vocabd.child import child_env, python_command
from vocabd.errors import VocabdError
from vocabd.files import write_json


class WorkerKilled(VocabdError):
    """The worker died from a signal (killed, out of memory): worth running again."""


class WorkerFailed(VocabdError):
    """The worker ran and reported an error (or wrote no result)."""


def run_worker(module: str, request: dict[str, Any], *, cwd: Path, env: dict[str, str] | None = None,
               timeout: float, log_file: Path | None = None) -> dict[str, Any]:
    """Run `python -P -m MODULE REQUEST RESULT` and return its result; raises WorkerKilled or WorkerFailed."""
    with tempfile.TemporaryDirectory(prefix="vocabd-worker-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        write_json(req, request)
        if log_file:
            log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL
        try:
            done = subprocess.run(python_command("-m", module, str(req), str(res)), cwd=cwd, env=child_env(**(env or {})),
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout)
        finally:
            if log_file:
                out.close()
        if done.returncode < 0:
            raise WorkerKilled(f"{module} was killed by signal {-done.returncode}")
        try:
            reply = json.loads(res.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise WorkerFailed(f"{module} exited with code {done.returncode} and wrote no result"
                               + (f" (its output: {log_file})" if log_file else "")) from None
    if not reply.get("ok"):
        raise WorkerFailed(str(reply.get("error") or f"{module} failed"))
    return reply["result"]


def serve(handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """A worker's `main`: read the request named in argv, write the result or the error; exit 0 or 1."""
    req, res = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        reply = {"ok": True, "result": handle(json.loads(req.read_text(encoding="utf-8")))}
    except VocabdError as e:
        reply = {"ok": False, "error": str(e)}
    except Exception as e:  # a bug: the message and where it happened, for the stage's FAILED.md
        frame = traceback.extract_tb(e.__traceback__)[-1]
        reply = {"ok": False, "error": f"{type(e).__name__}: {e} (at {Path(frame.filename).name}:{frame.lineno})"}
        traceback.print_exc()
    write_json(res, reply)
    sys.exit(0 if reply["ok"] else 1)
