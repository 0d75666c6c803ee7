"""The `train` stage: settle the phase's run settings once, then start the trainer as its own process (torch-free)."""

from __future__ import annotations

from vocabd.config import PhaseConfig
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.workspace import MIXED_TRAIN, Workspace

log = get_logger(__name__)


def phase_config(ws: Workspace, phase: str) -> PhaseConfig:
    return ws.config.mini if phase == "mini" else ws.config.full


def launch_training(ws: Workspace, experiment: str, phase: str) -> int:
    """Launch (or find already running) the experiment; returns the training process's pid.

    Idempotent, so a daemon restarted mid-stage can run it again: a live run is left alone, a
    finished one is not redone, and a run whose `config.json` was written is resumed from its last
    checkpoint (from step 0 when it has none).
    """
    from vocabd.training.launch import prepare_new_run, prepare_resume, spawn_trainer
    from vocabd.training.options import build_run_config
    from vocabd.training.run_folder import RunFolder
    from vocabd.training.status import load_status, read_status

    folder = RunFolder(ws.run_dir(experiment))
    if load_status(folder.root) is not None:
        current = read_status(folder.root, ws.config.train.stall_seconds)
        if current.state in ("running", "finished"):
            log.info("training_already_" + current.state, experiment=experiment, pid=current.pid)
            return current.pid or 0
    steps = phase_config(ws, phase)
    if folder.config_file.is_file():
        prepare_resume(folder, steps.max_steps)
    else:
        manifest = ws.phase_manifest(MIXED_TRAIN, phase)
        if not manifest.is_file():
            raise VocabdError(f"{manifest}: training manifest missing (the mix stage did not write it)")
        overrides = {"max_steps": steps.max_steps, "eval_interval": steps.eval_interval}
        prepare_new_run(folder, build_run_config(ws, experiment, manifest, overrides))
    pid = spawn_trainer(folder)
    log.info("training_launched", experiment=experiment, pid=pid, steps=steps.max_steps)
    return pid
