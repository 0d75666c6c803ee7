"""What `vocabd run-experiment` does: settle the run's settings once, then train here or detach a trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vocabd.training.launch import prepare_new_run, prepare_resume, spawn_trainer
from vocabd.training.options import build_run_config
from vocabd.training.run_folder import RunFolder
from vocabd.workspace import Workspace


def start_run(ws: Workspace, name: str, train: Path | None, flags: dict[str, Any], *, resume: bool,
              background: bool) -> None:
    folder = RunFolder(ws.run_dir(name))
    if resume:
        config = prepare_resume(folder, flags.get("max_steps"))
    else:
        config = build_run_config(ws, name, train, flags)
        prepare_new_run(folder, config)
    if background:
        pid = spawn_trainer(folder)
        click.echo(f"run {name} started in the background (pid {pid}); follow it with `vocabd poll {name} -f`")
        return
    from vocabd.training.loop import run_experiment

    status = run_experiment(folder, config, resume=resume)
    best = folder.best_info() or {}
    click.echo(f"run {name} {status.state} at step {status.step}: best/ = step {best.get('step')} "
               f"(dev WER {best.get('dev_wer', float('nan')):.3f}) in {folder.best}")
