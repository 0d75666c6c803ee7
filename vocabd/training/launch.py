"""Start a training run as its own detached process (the plan's "background training experiment").

Torch-free: the daemon launches runs through this module.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

from vocabd.child import child_env, vocabd_command
from vocabd.errors import VocabdError
from vocabd.training.run_folder import RunFolder
from vocabd.training.status import RunBusyError, RunStatus, is_locked, load_status, write_status
from vocabd.workspace import Workspace


def launch_experiment(
    ws: Workspace,
    name: str,
    train_manifest: Path | None,
    *,
    max_steps: int,
    eval_interval: int,
    dev: Path | None = None,
    replay: Path | None = None,
    replay_ratio: float | None = None,
    resume: bool = False,
    extra_args: Sequence[str] = (),
) -> int:
    """Spawn `python -m vocabd run-experiment NAME ...` detached; returns its pid at once.

    Its output goes to `runs/NAME/stdout.log`; progress is in `status.json` and `log.jsonl`.
    """
    args = ["--max-steps", str(max_steps), "--eval-interval", str(eval_interval)]
    if resume:
        args.append("--resume")
    else:
        if train_manifest is None:
            raise VocabdError(f"run {name}: a new run needs a training manifest")
        args += ["--train", str(Path(train_manifest).resolve())]
    if dev is not None:
        args += ["--dev", str(Path(dev).resolve())]
    if replay is not None:
        args += ["--replay", str(Path(replay).resolve())]
    if replay_ratio is not None:
        args += ["--replay-ratio", str(replay_ratio)]
    return spawn_run(ws, name, [*args, *extra_args])


def spawn_run(ws: Workspace, name: str, args: Sequence[str]) -> int:
    """Detach `vocabd run-experiment NAME --workspace WS ARGS` (foreground mode) from this process."""
    folder = RunFolder(ws.run_dir(name))
    folder.root.mkdir(parents=True, exist_ok=True)
    if is_locked(folder.root):
        status = load_status(folder.root)
        raise RunBusyError(f"run {name} is already running (pid {status.pid if status else '?'}) in {folder.root}")
    cmd = vocabd_command("run-experiment", name, "--workspace", str(ws.root), *args)
    with open(folder.stdout_log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=child_env())
    # a long-lived parent (the queue consumer) must reap the child, or it lingers as a zombie
    threading.Thread(target=proc.wait, daemon=True).start()
    _mark_started(folder, proc.pid)
    return proc.pid


def _mark_started(folder: RunFolder, pid: int) -> None:
    """status.json says 'running' with the new pid right away, before the child has loaded anything."""
    status = load_status(folder.root) or RunStatus(started=time.time())
    status.state, status.pid, status.heartbeat, status.error, status.reason = "running", pid, time.time(), "", ""
    write_status(folder.root, status)
