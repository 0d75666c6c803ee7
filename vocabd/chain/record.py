"""The chain record (`data/chain.json`). Torch-free.

One record says where the training chain is: the stage to run next (or the one running), its attempt,
and the token of the one task allowed to move the chain on, so a daemon killed mid-stage re-enqueues
exactly that stage and a stale or duplicated task does nothing. Every change is made under an flock
(`data/.chain.lock`) and a thread lock: the daemon's threads, `vocabd run` queueing a chain from
another process and a foreground run take turns. A torn or wrong-shaped file is reported
(StateCorrupt), never read as an empty or finished chain.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vocabd.chain.gate import GateDecision
from vocabd.chain.spec import MAX_FAILURES
from vocabd.clock import now_iso
from vocabd.codec import DecodeError, decode, encode
from vocabd.evaluation.runner import SetScore
from vocabd.files import CorruptFile, read_json, write_json
from vocabd.synthesis.results import MixResult, SynthesisResult
from vocabd.workspace import CHAIN_FILE, CHAIN_LOCK, Workspace

LIVE_STATES = ("queued", "running", "interrupted")  # the chain still has this stage to run
STATES = (*LIVE_STATES, "done", "failed", "superseded")
VERSION = 2  # records before it kept other stage summaries: those are left out when read

_thread_lock = threading.RLock()


class StateCorrupt(CorruptFile):
    """A state file that is torn or not of the expected shape."""


# the record's parts ------------------------------------------------------------------------------

@dataclass
class Material:
    """What the chain was started on."""
    jargon: bool = False
    my_voice_train: int = 0
    my_voice_eval: int = 0
    voice_ref: bool = False
    long_recordings: int = 0  # recordings over 30 s still to be cut into pieces (the chain's first stage does it)


@dataclass
class StageTime:
    """Wall time of one stage; a stage that runs several times (poll) spans first start to last end."""
    start: float
    end: float = 0.0
    wall_s: float = 0.0
    runs: int = 0


@dataclass
class Progress:
    step: int = 0
    max_steps: int = 0
    eta_seconds: float | None = None
    training: str | None = None  # the run's own state (running, stalled, ...), when read live
    note: str = ""  # why it is so (paused on battery, stalled, ...), when read live


@dataclass
class EvaluateResult:
    """The evaluate stage's outcome: the scores, the gate's decision (phase 2) and the report."""
    report: str
    primary: SetScore
    safety: SetScore | None = None
    gate: GateDecision | None = None


@dataclass
class PhaseResults:
    """Each stage's typed result in one phase."""
    synthesize: SynthesisResult | None = None
    mix: MixResult | None = None
    evaluate: EvaluateResult | None = None


@dataclass
class StageFailure:
    name: str
    phase: str
    stage: str
    attempt: int
    error: str
    when: str


@dataclass
class Chain:
    name: str
    phase: str = "mini"
    stage: str = "synthesize"
    state: str = "queued"  # queued | running | interrupted | done | failed | superseded
    attempt: int = 1
    token: str = ""  # the task that may run this stage; "" until one is enqueued
    eta_epoch: float = 0.0  # when a queued stage is due
    repeat: int = 0  # how often this stage re-scheduled itself (poll)
    started: str = ""
    started_epoch: float = 0.0
    updated: str = ""
    finished: str | None = None
    error: str | None = None  # the current stage's last error (a retry's reason, or the failure)
    failed: str | None = None  # FAILED.md
    material: Material = field(default_factory=Material)
    train_pid: int | None = None
    resumes: dict[str, int] = field(default_factory=dict)
    progress: Progress | None = None
    timings: dict[str, dict[str, StageTime]] = field(default_factory=dict)
    results: dict[str, PhaseResults] = field(default_factory=dict)
    evaluate_started: float | None = None
    last_report: str | None = None
    gate: str | None = None  # the promotion gate's reason, after phase 2

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    def to_dict(self) -> dict[str, Any]:
        return encode(self)


@dataclass
class ChainRecord:
    """The whole file: the latest chain, and what decides when new material calls for another one."""
    chain: Chain | None = None
    considered_seq: int = 0  # the inbox ledger's material counter when the latest chain started (or was refused)
    considered_epoch: float = 0.0
    refused: str | None = None  # why the latest start was refused
    failures: list[StageFailure] = field(default_factory=list)

    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @property
    def considered(self) -> bool:
        return self.chain is not None or self.considered_epoch > 0


# reading and writing -----------------------------------------------------------------------------

def chain_path(ws: Workspace) -> Path:
    return ws.data / CHAIN_FILE


def read_object(path: Path) -> dict[str, Any] | None:
    """A state file's JSON object (vocabd.files.read_json); StateCorrupt, with what to do, when torn."""
    try:
        return read_json(path)
    except CorruptFile as e:
        raise StateCorrupt(f"{e}: {repair_hint(path)}") from None


def repair_hint(path: Path) -> str:
    return f"run `vocabd doctor` (`--repair` sets {path.name} aside)"


def read_record(ws: Workspace) -> ChainRecord:
    data = read_object(chain_path(ws))
    if data is None:
        return ChainRecord()
    try:
        record = decode(ChainRecord, _upgraded(data), "chain.json")
    except DecodeError as e:
        raise StateCorrupt(f"{chain_path(ws)} is not a chain record ({e}): {repair_hint(chain_path(ws))}") from None
    if record.chain is not None and record.chain.state not in STATES:
        raise StateCorrupt(f"{chain_path(ws)} is not a chain record (chain state {record.chain.state!r} is none "
                           f"of {', '.join(STATES)}): {repair_hint(chain_path(ws))}")
    return record


def _upgraded(data: Any) -> Any:
    """A record an older vocabd wrote: its stage summaries are of another shape and are left out (they only
    describe finished stages); everything that moves the chain on reads as it was."""
    if not isinstance(data, dict) or data.get("version") == VERSION:
        return data
    chain = data.get("chain")
    if isinstance(chain, dict):
        chain = {k: v for k, v in chain.items() if k != "results"}
    return {**data, "chain": chain, "version": VERSION}


def current(ws: Workspace) -> Chain | None:
    return read_record(ws).chain


def is_live(ws: Workspace) -> bool:
    chain = current(ws)
    return chain is not None and chain.live


@contextmanager
def _locked(ws: Workspace) -> Iterator[None]:
    ws.data.mkdir(parents=True, exist_ok=True)
    with _thread_lock:
        fd = os.open(ws.data / CHAIN_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


@contextmanager
def editing(ws: Workspace) -> Iterator[ChainRecord]:
    """Read, change and write the record as one step under the locks."""
    with _locked(ws):
        record = read_record(ws)
        before = record.to_dict()
        yield record
        if record.to_dict() != before:  # a move that did not apply writes nothing
            if record.chain is not None:
                record.chain.updated = now_iso()
            write_json(chain_path(ws), record.to_dict())


def new_chain(ws: Workspace, name: str, material: Material) -> Chain:
    """The record names a new chain, at its first stage (no task enqueued yet)."""
    from vocabd.inbox.ledger import read_state  # the inbox ledger's material counter

    seq = read_state(ws)["seq"]
    with editing(ws) as record:
        record.chain = Chain(name=name, started=now_iso(), started_epoch=time.time(), material=material)
        record.considered_seq, record.considered_epoch, record.refused = seq, time.time(), None
        return record.chain


def cover_own_material(ws: Workspace, name: str) -> None:
    """Chain `name` wrote material files itself (the pieces of its long recordings): what the material check
    compares their times with moves past those writes. The ledger's counter still tells of new drops."""
    with editing(ws) as record:
        if record.chain is not None and record.chain.name == name:
            record.considered_epoch = time.time()


def start_refused(ws: Workspace, error: str) -> None:
    """A start that failed (nothing to train on) covers the material seen so far: it is not retried every second."""
    from vocabd.inbox.ledger import read_state

    seq = read_state(ws)["seq"]
    with editing(ws) as record:
        record.considered_seq, record.considered_epoch, record.refused = seq, time.time(), error


def update(ws: Workspace, name: str, **changes: Any) -> Chain | None:
    """Apply `changes` if the record still names chain `name`; returns the changed chain."""
    with editing(ws) as record:
        if record.chain is None or record.chain.name != name:
            return None
        for key, value in changes.items():
            setattr(record.chain, key, value)
        return record.chain


def record_timing(ws: Workspace, name: str, phase: str, stage: str, start: float, end: float) -> None:
    with editing(ws) as record:
        if record.chain is None or record.chain.name != name:
            return
        stages = record.chain.timings.setdefault(phase, {})
        entry = stages.get(stage) or StageTime(start=start)
        entry.end, entry.wall_s, entry.runs = end, round(end - entry.start, 2), entry.runs + 1
        stages[stage] = entry


# the driver's moves (the daemon's queue, or a foreground run) ---------------------------------------

def set_queued(ws: Workspace, name: str, phase: str, stage: str, attempt: int = 1, delay: float = 0.0,
               after: str | None = None, repeat: int = 0, error: str | None = None) -> str | None:
    """Name the next stage of chain `name` and return the token its task must carry. With `after`, only
    if the record still carries that token (a superseded or interrupted task must not move the chain)."""
    token = uuid.uuid4().hex
    with editing(ws) as record:
        chain = record.chain
        if chain is None or chain.name != name or (after is not None and chain.token != after):
            return None
        if after is None and not chain.live:
            return None
        chain.phase, chain.stage, chain.state, chain.attempt, chain.token = phase, stage, "queued", attempt, token
        chain.eta_epoch, chain.repeat, chain.error = time.time() + delay, repeat, error
    return token


def begin(ws: Workspace, token: str) -> Chain | None:
    """The task holding `token` starts its stage; None when it was superseded."""
    with editing(ws) as record:
        if record.chain is None or record.chain.token != token or not record.chain.live:
            return None
        record.chain.state = "running"
        return record.chain


def finish(ws: Workspace, token: str) -> bool:
    with editing(ws) as record:
        if record.chain is None or record.chain.token != token:
            return False
        record.chain.state, record.chain.finished, record.chain.error = "done", now_iso(), None
        return True


def fail(ws: Workspace, token: str, error: str) -> bool:
    with editing(ws) as record:
        chain = record.chain
        if chain is None or chain.token != token:
            return False
        chain.state, chain.finished, chain.error = "failed", now_iso(), error
        record.failures = [*record.failures, StageFailure(chain.name, chain.phase, chain.stage, chain.attempt,
                                                          error, now_iso())][-MAX_FAILURES:]
        return True


def interrupt(ws: Workspace) -> Chain | None:
    """At shutdown: a running stage is left to the next start (a new token retires the running task)."""
    with editing(ws) as record:
        if record.chain is None or record.chain.state != "running":
            return None
        record.chain.state, record.chain.token = "interrupted", uuid.uuid4().hex
        return record.chain
