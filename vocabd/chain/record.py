"""The chain record (`data/chain.json`) and the active adapter (`data/active.json`). Torch-free.

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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, TypeVar, get_type_hints

from vocabd.clock import now_iso
from vocabd.files import CorruptFile, read_json, write_json
from vocabd.workspace import ACTIVE_FILE, CHAIN_FILE, CHAIN_LOCK, Workspace

LIVE_STATES = ("queued", "running", "interrupted")  # the chain still has this stage to run
STATES = (*LIVE_STATES, "done", "failed", "superseded")
MAX_ATTEMPTS = 3  # runs of one stage that hit a transient error before the chain gives up
MAX_FAILURES = 20  # failed stages remembered, across chains

_thread_lock = threading.RLock()
T = TypeVar("T")


class StateCorrupt(CorruptFile):
    """A state file that is torn or not of the expected shape."""


# the record's parts ------------------------------------------------------------------------------

SIMPLE = {"str": str, "int": int, "float": (int, float), "bool": bool}


def _check_scalars(cls: type, data: dict[str, Any]) -> None:
    """Each plain field (str, int, float, bool, or one of those | None) holds a value of its type."""
    for name, hint in get_type_hints(cls).items():
        if name not in data:
            continue
        text = str(hint).replace("<class '", "").replace("'>", "")
        optional = "None" in text
        base = text.replace(" | None", "").replace("typing.Optional[", "").rstrip("]")
        if base in SIMPLE and not (data[name] is None and optional):
            value = data[name]
            if not isinstance(value, SIMPLE[base]) or (base != "bool" and isinstance(value, bool)):
                raise StateCorrupt(f"field {name!r} is {value!r}, not a {base}")


def _from_dict(cls: type[T], data: Any, **nested: Any) -> T:
    """Build dataclass `cls` from a dict, keeping known keys; `nested` gives already-built field values."""
    if not isinstance(data, dict):
        raise StateCorrupt(f"expected an object for {cls.__name__}, found {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in known and k not in nested}
    _check_scalars(cls, values)
    try:
        return cls(**values, **nested)
    except TypeError as e:
        raise StateCorrupt(f"{cls.__name__}: {e}") from None


def _mapping(data: Any, what: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StateCorrupt(f"{what} is not an object")
    return data


@dataclass
class Material:
    """What the chain was started on."""
    jargon: bool = False
    my_voice_train: int = 0
    my_voice_eval: int = 0
    voice_ref: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> "Material":
        return _from_dict(cls, data)


@dataclass
class StageTime:
    """Wall time of one stage; a stage that runs several times (poll) spans first start to last end."""
    start: float
    end: float = 0.0
    wall_s: float = 0.0
    runs: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> "StageTime":
        return _from_dict(cls, data)


@dataclass
class Progress:
    step: int = 0
    max_steps: int = 0
    eta_seconds: float | None = None
    training: str | None = None  # the run's own state (running, stalled, ...), when read live
    note: str = ""  # why it is so (paused on battery, stalled, ...), when read live

    @classmethod
    def from_dict(cls, data: Any) -> "Progress":
        return _from_dict(cls, data)


@dataclass
class SynthesisSummary:
    manifest: str
    backend: str
    cloned: bool = False
    voices: list[str] = field(default_factory=list)
    clips: int = 0
    made: int = 0
    cached: int = 0
    failures: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: Any) -> "SynthesisSummary":
        data = _mapping(data, "a synthesis result")
        if isinstance(data.get("failures"), list):  # a SynthesisResult's own dict lists them
            data = {**data, "failures": len(data["failures"])}
        return _from_dict(cls, data)


@dataclass
class MixSummary:
    manifest: str
    rows: int = 0
    hours: float = 0.0
    synthetic_ratio: float = 0.0
    achieved_ratio: float | None = None
    sources: dict[str, int] = field(default_factory=dict)  # rows per source
    problems: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> "MixSummary":
        data = _mapping(data, "a mix result")
        sources = {str(k): (v["rows"] if isinstance(v, dict) else v) for k, v in
                   _mapping(data.get("sources"), "mix sources").items()}
        problems = data.get("problems", 0)
        return _from_dict(cls, {**data, "problems": len(problems) if isinstance(problems, list) else problems},
                          sources=sources)


@dataclass
class PhaseResults:
    synthesize: SynthesisSummary | None = None
    mix: MixSummary | None = None

    @classmethod
    def from_dict(cls, data: Any) -> "PhaseResults":
        data = _mapping(data, "phase results")
        return cls(synthesize=SynthesisSummary.from_dict(data["synthesize"]) if data.get("synthesize") else None,
                   mix=MixSummary.from_dict(data["mix"]) if data.get("mix") else None)


@dataclass
class StageFailure:
    name: str
    phase: str
    stage: str
    attempt: int
    error: str
    when: str

    @classmethod
    def from_dict(cls, data: Any) -> "StageFailure":
        return _from_dict(cls, data)


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

    @classmethod
    def from_dict(cls, data: Any) -> "Chain":
        data = _mapping(data, "the chain")
        chain = _from_dict(cls, data, material=Material.from_dict(data.get("material") or {}),
                           progress=Progress.from_dict(data["progress"]) if data.get("progress") else None,
                           timings={p: {s: StageTime.from_dict(t) for s, t in _mapping(stages, "timings").items()}
                                    for p, stages in _mapping(data.get("timings"), "timings").items()},
                           results={p: PhaseResults.from_dict(r)
                                    for p, r in _mapping(data.get("results"), "results").items()},
                           resumes=_mapping(data.get("resumes"), "resumes"))
        if chain.state not in STATES:
            raise StateCorrupt(f"chain state {chain.state!r} is none of {', '.join(STATES)}")
        return chain

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChainRecord:
    """The whole file: the latest chain, and what decides when new material calls for another one."""
    chain: Chain | None = None
    considered_seq: int = 0  # the inbox ledger's material counter when the latest chain started (or was refused)
    considered_epoch: float = 0.0
    refused: str | None = None  # why the latest start was refused
    failures: list[StageFailure] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any) -> "ChainRecord":
        data = _mapping(data, "the chain record")
        failures = data.get("failures", [])
        if not isinstance(failures, list):
            raise StateCorrupt("failures is not a list")
        chain = data.get("chain")
        return _from_dict(cls, data, chain=Chain.from_dict(chain) if chain is not None else None,
                          failures=[StageFailure.from_dict(f) for f in failures])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def considered(self) -> bool:
        return self.chain is not None or self.considered_epoch > 0


# reading and writing -----------------------------------------------------------------------------

def chain_path(ws: Workspace) -> Path:
    return ws.data / CHAIN_FILE


def active_path(ws: Workspace) -> Path:
    return ws.data / ACTIVE_FILE


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
        return ChainRecord.from_dict(data)
    except StateCorrupt as e:
        raise StateCorrupt(f"{chain_path(ws)} is not a chain record ({e}): {repair_hint(chain_path(ws))}") from None


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
    from vocabd.daemon.ledger import read_state  # the inbox ledger's material counter

    seq = read_state(ws)["seq"]
    with editing(ws) as record:
        record.chain = Chain(name=name, started=now_iso(), started_epoch=time.time(), material=material)
        record.considered_seq, record.considered_epoch, record.refused = seq, time.time(), None
        return record.chain


def start_refused(ws: Workspace, error: str) -> None:
    """A start that failed (nothing to train on) covers the material seen so far: it is not retried every second."""
    from vocabd.daemon.ledger import read_state

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


def retry_delay(first: float, attempt: int) -> float:
    """Seconds before the next run of a stage whose run `attempt` hit a transient error (doubling)."""
    return first * 2 ** (attempt - 1)


# the active adapter ------------------------------------------------------------------------------

def read_active(ws: Workspace) -> dict[str, Any] | None:
    return read_object(active_path(ws))


def write_active(ws: Workspace, active: dict[str, Any]) -> None:
    write_json(active_path(ws), active)
