"""The job chain: synthesize -> mix -> train -> poll -> evaluate, phase 1 (mini) then phase 2 (full).

Plain synchronous functions: the daemon's Huey tasks and `vocabd run --foreground` both call
`run_stage` through `vocabd.jobs.driver`, which moves the chain record (`data/chain.json`,
`vocabd.jobs.state`) on to whatever `StageOutcome` names next. A stage records its results, timings and
failures in that record. Torch-free: training and evaluation run as `vocabd` subprocesses.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from vocabd.errors import VocabdError
from vocabd.jobs import state
from vocabd.jobs.failure import write_failed
from vocabd.log import get_logger
from vocabd.workspace import MY_VOICE_EVAL, MY_VOICE_TRAIN, PHASES, Workspace, phase_name

log = get_logger(__name__)

STAGES = ("synthesize", "mix", "train", "poll", "evaluate")


class TransientError(VocabdError):
    """Worth retrying (a killed subprocess, a busy lock): the driver re-runs the stage, at most
    `state.MAX_ATTEMPTS` runs in all."""


class StageFailed(VocabdError):
    """The stage failed for good: FAILED.md is written and the chain stops."""

    def __init__(self, message: str, failed_file: Path | None = None):
        super().__init__(message)
        self.failed_file = failed_file


@dataclass
class StageOutcome:
    next_stage: str | None  # stage to enqueue next, None = chain ends for this phase
    next_phase: str | None = None  # "full" after a passed mini evaluate, else None
    delay: float = 0.0  # seconds before next (poll re-schedules itself with a delay)


# starting ----------------------------------------------------------------------------------------

def start_chain(ws: Workspace) -> tuple[str, str, str]:
    """Begin a chain for the workspace's current material; a chain still running is superseded."""
    material = snapshot_material(ws)
    if not material.jargon and not material.my_voice_train:
        raise VocabdError(
            f"nothing to train on in {ws.data}: drop a jargon list (.txt) or recordings with transcripts "
            f"into {ws.inbox}")
    old = state.current(ws)
    if old is not None and old.live:
        _supersede(ws, old)
    name = _new_name(ws, old)
    state.new_chain(ws, name, material)
    log.info("chain_started", name=name, **asdict(material))
    return name, "mini", "synthesize"


def snapshot_material(ws: Workspace) -> state.Material:
    jargon = ws.jargon
    return state.Material(
        jargon=jargon.is_file() and jargon.stat().st_size > 0,
        my_voice_train=_count_rows(ws.manifest(MY_VOICE_TRAIN)),
        my_voice_eval=_count_rows(ws.manifest(MY_VOICE_EVAL)),
        voice_ref=ws.voice_ref.is_file(),
    )


def _count_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _new_name(ws: Workspace, old: state.Chain | None) -> str:
    base = "adapt-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name, n = base, 1
    while (old and old.name == name) or ws.run_dir(name).exists() or ws.run_dir(phase_name(name, "mini")).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _supersede(ws: Workspace, old: state.Chain) -> None:
    """New material restarts the chain; the old chain's training process is stopped (only when proven to
    be that run's trainer: the recorded pid is data from the workspace, not proof)."""
    from vocabd.training.status import is_trainer

    state.update(ws, old.name, state="superseded")
    pid = old.train_pid
    run_dir = ws.run_dir(phase_name(old.name, old.phase))
    if pid and old.stage in ("train", "poll"):
        if is_trainer(run_dir, pid):
            os.kill(pid, signal.SIGTERM)
            log.info("training_stopped", pid=pid, run=run_dir.name)
        else:
            log.warning("training_not_stopped", pid=pid, run=run_dir.name,
                        reason="the recorded pid is not this run's training process")
    log.info("chain_superseded", name=old.name, stage=old.stage)


# running -----------------------------------------------------------------------------------------

def run_stage(ws: Workspace, name: str, phase: str, stage: str) -> StageOutcome:
    """Run one stage of chain `name`; returns what runs next. Raises TransientError or StageFailed, and
    StateCorrupt when the chain record cannot be read (never taken for a finished chain)."""
    if stage not in STAGES or phase not in PHASES:
        raise VocabdError(f"unknown stage {phase}/{stage} (stages: {', '.join(STAGES)}; phases: mini, full)")
    chain = state.current(ws)
    if chain is None or chain.name != name or not chain.live:
        log.info("stage_skipped_stale_chain", name=name, phase=phase, stage=stage,
                 current=chain.name if chain else None, state=chain.state if chain else None)
        return StageOutcome(None)
    start = time.time()
    try:
        outcome = STAGE_FUNCTIONS[stage](ws, name, phase)
    except TransientError as e:
        _transient(ws, chain, phase, stage, e)
        raise
    except state.StateCorrupt:
        raise
    except Exception as e:  # anything else is final for this chain: say so in FAILED.md
        path = record_failure(ws, name, phase, stage, e)
        raise StageFailed(f"{phase}/{stage} failed: {e} (see {path})", path) from e
    finally:
        state.record_timing(ws, name, phase, stage, start, time.time())
    if not _still_current(ws, name):  # new material superseded this chain while the stage ran
        log.info("chain_superseded_during_stage", name=name, phase=phase, stage=stage)
        return StageOutcome(None)
    return outcome


def _still_current(ws: Workspace, name: str) -> bool:
    chain = state.current(ws)
    return chain is not None and chain.name == name and chain.live


def _transient(ws: Workspace, chain: state.Chain, phase: str, stage: str, error: TransientError) -> None:
    """The one retry policy: the stage's `state.MAX_ATTEMPTS`-th transient error fails the chain."""
    log.warning("stage_transient_error", name=chain.name, phase=phase, stage=stage, attempt=chain.attempt,
                error=str(error))
    if chain.attempt >= state.MAX_ATTEMPTS:
        path = record_failure(ws, chain.name, phase, stage, error)
        raise StageFailed(f"{phase}/{stage} failed {chain.attempt} times: {error} (see {path})", path) from error


def _log_for(stage: str) -> Callable[..., Any]:
    """Polls repeat every few seconds for hours: they log at debug level."""
    return log.debug if stage == "poll" else log.info


def record_failure(ws: Workspace, name: str, phase: str, stage: str, error: BaseException) -> Path:
    """Write FAILED.md into the phase's run folder and name it in the record (the driver marks the chain
    failed: nothing runs after)."""
    experiment = phase_name(name, phase)
    path = write_failed(ws, experiment, phase, stage, error)
    state.update(ws, name, failed=str(path), error=str(error))
    log.error("stage_failed", name=name, phase=phase, stage=stage, error=str(error), failed_file=str(path))
    return path


# the stages --------------------------------------------------------------------------------------

SYNTHESIS_TIMEOUT_S = 4 * 3600  # a cloned voice on a CPU renders ~90x slower than real time


def heldout_count(ws: Workspace) -> int:
    return max(8, min(40, ws.config.full.clips // 10))


def stage_synthesize(ws: Workspace, name: str, phase: str) -> StageOutcome:
    """Speech is rendered in a worker process (vocabd/workers/synthesize.py): the daemon stays light."""
    from vocabd.jobs.train import phase_config
    from vocabd.longform.pending import split_pending
    from vocabd.workers.protocol import WorkerKilled, run_worker

    split_pending(ws)  # recordings over 30 s become pieces before anything reads the recordings
    request = {"workspace": str(ws.root), "phase": phase, "count": phase_config(ws, phase).clips,
               "heldout_count": heldout_count(ws)}
    try:
        result = run_worker("vocabd.workers.synthesize", request, cwd=ws.root, timeout=SYNTHESIS_TIMEOUT_S,
                            env={"VOCABD_HOME": str(ws.root)}, log_file=ws.data / "synthetic" / "worker.log")
    except WorkerKilled as e:
        raise TransientError(f"synthesis: {e}") from e
    _store_result(ws, name, phase, "synthesize", result)
    return StageOutcome("mix")


def stage_mix(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.mix import mix

    _store_result(ws, name, phase, "mix", mix(ws, phase))
    return StageOutcome("train")


def stage_train(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.poll import poll_seconds
    from vocabd.jobs.train import launch_training
    from vocabd.training.status import RunBusyError

    try:
        pid = launch_training(ws, phase_name(name, phase), phase)
    except RunBusyError as e:  # a previous process of this run is still letting go of its lock
        raise TransientError(str(e)) from e
    state.update(ws, name, train_pid=pid)
    return StageOutcome("poll", delay=poll_seconds())


def stage_poll(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.poll import poll_seconds, poll_training

    chain = state.current(ws)
    resumes = dict(chain.resumes) if chain else {}
    result = poll_training(ws, phase_name(name, phase), phase, resumes.get(phase, 0))
    changes: dict[str, Any] = {"progress": state.Progress(result.step, result.max_steps, result.eta_seconds)}
    if result.resumed:  # the relaunched trainer's pid is the one a supersede may stop
        changes.update(resumes={**resumes, phase: resumes.get(phase, 0) + 1}, train_pid=result.pid)
    state.update(ws, name, **changes)
    if result.finished:
        return StageOutcome("evaluate")
    return StageOutcome("poll", delay=poll_seconds())


def stage_evaluate(ws: Workspace, name: str, phase: str) -> StageOutcome:
    from vocabd.jobs.evaluate import EvaluationCrashed, evaluate_run
    from vocabd.general.pool import yardstick_kind
    from vocabd.jobs.gate import decide_from_results
    from vocabd.report import build_report, print_table, write_report

    experiment = phase_name(name, phase)
    state.update(ws, name, evaluate_started=time.time())
    try:
        results = evaluate_run(ws, experiment)
    except EvaluationCrashed as e:
        raise TransientError(str(e)) from e
    gate = decide_from_results(results, ws.config.gate, yardstick_kind(ws)) if phase == "full" else None
    report = build_report(ws, experiment, phase, results, gate.to_dict() if gate else None, _chain_so_far(ws, phase))
    path = write_report(ws, report)
    if phase == "full":
        from vocabd.corrections.report import add_to_report

        add_to_report(ws, ws.run_dir(experiment), path)
    print_table(report)
    state.update(ws, name, last_report=str(path), **({"gate": gate.reason} if gate else {}))
    if phase == "mini":
        return StageOutcome("synthesize", next_phase="full")
    if gate is not None and gate.promote:
        promote(ws, name, experiment, report, path)
    else:
        log.warning("adapter_kept_out", experiment=experiment, reason=gate.reason if gate else "")
    return StageOutcome(None)


def _chain_so_far(ws: Workspace, phase: str) -> dict[str, Any]:
    """The chain with this evaluate stage's time up to now, so the report lists every stage."""
    chain = state.current(ws)
    data = chain.to_dict() if chain else {}
    started = chain.evaluate_started if chain else None
    if started:
        data["timings"].setdefault(phase, {})["evaluate"] = asdict(
            state.StageTime(start=started, runs=1, wall_s=round(time.time() - started, 2)))
    return data


def promote(ws: Workspace, name: str, experiment: str, report: dict[str, Any], report_path: Path) -> None:
    """Make the run's best adapter the workspace's active model (`data/active.json`)."""
    rows = {r["set"]: r for r in report["table"]}
    chain = state.current(ws)
    state.write_active(ws, {
        "name": name, "experiment": experiment, "model": report["model"], "base_model": report.get("base_model"),
        "adapter": str(Path("runs") / experiment / "best"), "adapter_path": str(ws.run_dir(experiment) / "best"),
        "promoted": state.now_iso(), "trained_from": chain.started if chain else None,
        "material": asdict(chain.material) if chain else None,
        "primary_wer": rows["primary"]["adapter_wer_normalized"], "primary_wer_raw": rows["primary"]["adapter_wer"],
        "base_primary_wer": rows["primary"]["base_wer_normalized"],
        "safety_wer": rows["safety"]["adapter_wer_normalized"] if "safety" in rows else None,
        "base_safety_wer": rows["safety"]["base_wer_normalized"] if "safety" in rows else None,
        "report": str(report_path),
    })
    log.info("adapter_promoted", experiment=experiment, adapter=str(ws.run_dir(experiment) / "best"))


def _store_result(ws: Workspace, name: str, phase: str, stage: str, result: Any) -> None:
    """Keep the stage's summary in the record, typed (SynthesisSummary, MixSummary)."""
    chain = state.current(ws)
    if chain is None:
        return
    results = dict(chain.results)
    phase_results = results.setdefault(phase, state.PhaseResults())
    data = result if isinstance(result, dict) else result.to_dict()
    summary = {"synthesize": state.SynthesisSummary, "mix": state.MixSummary}[stage].from_dict(data)
    setattr(phase_results, stage, summary)
    state.update(ws, name, results=results)


STAGE_FUNCTIONS: dict[str, Callable[[Workspace, str, str], StageOutcome]] = {
    "synthesize": stage_synthesize, "mix": stage_mix, "train": stage_train, "poll": stage_poll,
    "evaluate": stage_evaluate,
}


# status ------------------------------------------------------------------------------------------

def chain_state(ws: Workspace) -> dict[str, Any]:
    """For `vocabd status` and a foreground run: the chain record, its live training progress, the active
    adapter and the last report. `resume` is `[name, phase, stage]` while the chain has work left."""
    chain = state.current(ws)
    data = chain.to_dict() if chain else {"name": None, "phase": None, "stage": None, "state": "none"}
    live = chain is not None and chain.live
    progress = _progress(ws, chain) if live else (chain.progress if chain else None)
    return {
        **data, "experiment": phase_name(chain.name, chain.phase) if chain else None,
        "progress": asdict(progress) if progress else None,
        "active": state.read_active(ws), "last_report": _last_report(ws), "general": _general_line(ws),
        "resume": [chain.name, chain.phase, chain.stage] if live else None,
    }


def _general_line(ws: Workspace) -> str | None:
    from vocabd.general.pool import status_line

    return status_line(ws)


def _progress(ws: Workspace, chain: state.Chain) -> state.Progress | None:
    if chain.stage not in ("train", "poll"):
        return chain.progress
    from vocabd.training.status import read_status

    try:
        status = read_status(ws.run_dir(phase_name(chain.name, chain.phase)), ws.config.train.stall_seconds)
    except VocabdError:
        return chain.progress
    return state.Progress(status.step, status.max_steps, status.eta_seconds, status.state, status.reason)


def _last_report(ws: Workspace) -> str | None:
    reports = sorted(ws.runs.glob("*/report.md"), key=lambda p: p.stat().st_mtime) if ws.runs.is_dir() else []
    return str(reports[-1]) if reports else None
