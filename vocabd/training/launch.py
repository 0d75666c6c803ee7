"""Start a training run as its own detached process: prepare `runs/NAME/config.json`, then spawn the trainer.

Torch-free: the daemon launches runs through this module.
"""

from __future__ import annotations

import time

from vocabd.child import python_command
from vocabd.child.detached import spawn_detached
from vocabd.errors import VocabdError
from vocabd.training.config import RunConfig
from vocabd.training.run_folder import RunFolder
from vocabd.training.status import TRAINER_MODULE, RunBusyError, RunStatus, is_locked, load_status, write_status


def prepare_new_run(folder: RunFolder, config: RunConfig) -> None:
    """Write a new run's `config.json`: from here on it is the run's only record of its settings."""
    _refuse_busy(folder)
    if folder.config_file.exists():
        raise VocabdError(f"run {folder.name} already exists in {folder.root}: continue it with --resume, "
                          "or pick another name")
    folder.write_config(config)


def prepare_resume(folder: RunFolder, max_steps: int | None = None) -> RunConfig:
    """The saved settings of a run to continue; only `max_steps` may change (to train a finished run further:
    then exactly that many steps, whatever `max_epochs` said)."""
    _refuse_busy(folder)
    if not folder.config_file.exists():
        raise VocabdError(f"run {folder.name}: nothing to resume in {folder.root} (no config.json)")
    config = folder.read_config()
    if max_steps and max_steps != config.max_steps:
        config.max_steps, config.max_epochs = max_steps, 0.0
        config.validate()
        folder.write_config(config)
    return config


def spawn_trainer(folder: RunFolder) -> int:
    """Detach the training process for a prepared run folder; returns its pid at once.

    The child (`vocabd.training.worker`) reads nothing but `config.json`. Its output goes to `stdout.log`;
    progress is in `status.json` and `log.jsonl`.
    """
    _refuse_busy(folder)
    proc = spawn_detached(python_command("-m", TRAINER_MODULE, str(folder.root)), folder.stdout_log)
    _mark_started(folder, proc.pid)
    return proc.pid


def _refuse_busy(folder: RunFolder) -> None:
    folder.root.mkdir(parents=True, exist_ok=True)
    if is_locked(folder.root):
        status = load_status(folder.root)
        raise RunBusyError(f"run {folder.name} is already running (pid {status.pid if status else '?'}) in "
                           f"{folder.root}; watch it with `vocabd poll {folder.name}`")


def _mark_started(folder: RunFolder, pid: int) -> None:
    """status.json says 'running' with the new pid right away, before the child has loaded anything."""
    status = load_status(folder.root) or RunStatus(started=time.time())
    status.state, status.pid, status.heartbeat, status.error, status.reason = "running", pid, time.time(), "", ""
    write_status(folder.root, status)
