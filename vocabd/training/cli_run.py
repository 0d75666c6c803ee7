"""What `vocabd run-experiment` does: check the request, then train here or detach a process that does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vocabd.errors import VocabdError
from vocabd.training.config import RunConfig
from vocabd.training.launch import spawn_run
from vocabd.training.options import build_run_config, config_args
from vocabd.training.run_folder import RunFolder
from vocabd.training.status import RunBusyError, is_locked, load_status
from vocabd.workspace import Workspace


def start_run(ws: Workspace, name: str, train: Path | None, flags: dict[str, Any], *, resume: bool,
              background: bool) -> None:
    folder = RunFolder(ws.run_dir(name))
    if is_locked(folder.root):
        status = load_status(folder.root)
        raise RunBusyError(f"run {name} is already running (pid {status.pid if status else '?'}); "
                           f"watch it with `vocabd poll {name}`")
    config = _resume_config(folder, flags) if resume else _new_config(ws, folder, train, flags)
    if background:
        args = ["--resume"] + (["--max-steps", str(config.max_steps)] if resume else [])
        pid = spawn_run(ws, name, args if resume else config_args(config))
        click.echo(f"run {name} started in the background (pid {pid}); follow it with `vocabd poll {name} -f`")
        return
    from vocabd.training.loop import run_experiment

    status = run_experiment(folder, config, resume=resume)
    best = folder.best_info() or {}
    click.echo(f"run {name} {status.state} at step {status.step}: best/ = step {best.get('step')} "
               f"(dev WER {best.get('dev_wer', float('nan')):.3f}) in {folder.best}")


def _new_config(ws: Workspace, folder: RunFolder, train: Path | None, flags: dict[str, Any]) -> RunConfig:
    if folder.config_file.exists():
        raise VocabdError(f"run {folder.name} already exists in {folder.root}: continue it with --resume, "
                          "or pick another name")
    return build_run_config(ws, folder.name, train, flags)


def _resume_config(folder: RunFolder, flags: dict[str, Any]) -> RunConfig:
    """The saved settings; only --max-steps may change (to train a finished run further)."""
    if not folder.config_file.exists():
        raise VocabdError(f"run {folder.name}: nothing to resume in {folder.root} (no config.json)")
    config = folder.read_config()
    if flags.get("max_steps"):
        config.max_steps = flags["max_steps"]
    return config
