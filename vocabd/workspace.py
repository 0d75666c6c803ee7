"""A workspace: `vocabd.toml`, `inbox/`, `data/`, `runs/` and `queue.db` in one folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from vocabd.config import CONFIG_NAME, Config, load_config, render_config
from vocabd.errors import NoWorkspaceFound, WorkspaceError

ENV_VAR = "VOCABD_HOME"

# The data layout: every file name under data/, and the phase suffix, spelled out here only.
MY_VOICE_TRAIN = "my_voice_train"  # manifests (data/<name>.jsonl): the user's recordings, split by content hash
MY_VOICE_EVAL = "my_voice_eval"
SAFETY_EVAL = "safety_eval"  # general speech the user added: never trained on
SYNTHETIC_TRAIN = "synthetic_train"  # per phase: synthetic_train_mini.jsonl in phase 1
SYNTHETIC_EVAL = "synthetic_eval"  # held-out sentences in held-out voices (primary set without recordings)
MIXED_TRAIN = "mixed_train"  # per phase: what the trainer reads
JARGON_FILE = "jargon.txt"  # the merged jargon list
VOICE_REF, VOICE_REF_TEXT = "voice_ref.wav", "voice_ref.txt"  # the voice sample to clone and its transcript
EVAL_CACHE = "eval_cache"  # cached base-model evaluations
CHAIN_FILE, CHAIN_LOCK = "chain.json", ".chain.lock"  # the chain record (chain/record.py) and its flock
ACTIVE_FILE = "active.json"  # the promoted adapter and the base it needs
INBOX_STATE, INBOX_LOCK = "inbox_state.json", ".inbox.lock"  # what the inbox took in (inbox/ledger.py)
LONG_RECORDINGS, LONG_PIECES = "long_recordings.jsonl", "long_pieces.json"  # recordings over 30 s (longform/)
CORRECTIONS = "corrections.jsonl"  # corrected transcripts (corrections/)
KEPT_TRANSCRIPTS, PROPOSED_TERMS = "transcripts.jsonl", "proposed_terms.json"  # transcribe --keep, proposed jargon
GENERAL_POOL = "general_pool.json"  # which general-speech pool the workspace uses (general/pool.py)
DAEMON_LOCK = "daemon.lock"  # in the workspace root: held by the running daemon
PHASES = ("mini", "full")


def check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise WorkspaceError(f"unknown phase {phase!r} (use one of: {', '.join(PHASES)})")


def phase_name(name: str, phase: str) -> str:
    """The one suffix rule: phase 1 ("mini") files and runs end in `_mini`, phase 2 ("full") ones do not."""
    check_phase(phase)
    return f"{name}_mini" if phase == "mini" else name


def default_home() -> Path:
    """Per-user default; on macOS outside the TCC-protected folders a launchd agent cannot read."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "vocabd"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vocabd"


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Config

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def queue_db(self) -> Path:
        return self.root / "queue.db"

    @property
    def log_file(self) -> Path:
        return self.root / "vocabd.log"

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_NAME

    def manifest(self, name: str) -> Path:
        """`data/<name>.jsonl`, e.g. `ws.manifest(MY_VOICE_TRAIN)`."""
        return self.data / f"{name}.jsonl"

    def phase_manifest(self, name: str, phase: str) -> Path:
        """`data/<name>(_mini).jsonl`, e.g. `ws.phase_manifest(MIXED_TRAIN, "mini")`."""
        return self.manifest(phase_name(name, phase))

    @property
    def jargon(self) -> Path:
        return self.data / JARGON_FILE

    @property
    def has_jargon(self) -> bool:
        """A jargon list to make sentences from (without one the chain trains on the recordings alone)."""
        return self.jargon.is_file() and self.jargon.stat().st_size > 0

    @property
    def voice_ref(self) -> Path:
        return self.data / VOICE_REF

    @property
    def eval_cache(self) -> Path:
        return self.data / EVAL_CACHE

    def run_dir(self, name: str) -> Path:
        return self.runs / name


def init_workspace(path: Path) -> Workspace:
    """Create (or complete) a workspace at `path`; an existing `vocabd.toml` is kept. A new one sets nothing:
    it lists every setting commented out with its default (`render_config`)."""
    root = path.expanduser().resolve()
    for sub in ("inbox", "data", "runs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config_file = root / CONFIG_NAME
    if not config_file.exists():
        config_file.write_text(render_config(), encoding="utf-8")
    return open_workspace(root)


def open_workspace(root: Path) -> Workspace:
    root = root.expanduser().resolve()
    if not (root / CONFIG_NAME).is_file():
        raise WorkspaceError(f"{root} is not a vocabd workspace (no {CONFIG_NAME}); run `vocabd init {root}`")
    return Workspace(root=root, config=load_config(root / CONFIG_NAME))


def find_workspace(explicit: Path | None = None) -> Workspace:
    """`--workspace`, then $VOCABD_HOME, then the current folder, then the per-user default."""
    if explicit is not None:
        return open_workspace(explicit)
    if os.environ.get(ENV_VAR):
        return open_workspace(Path(os.environ[ENV_VAR]))
    if (Path.cwd() / CONFIG_NAME).is_file():
        return open_workspace(Path.cwd())
    home = default_home()
    if (home / CONFIG_NAME).is_file():
        return open_workspace(home)
    raise NoWorkspaceFound(
        f"no workspace found (tried --workspace, ${ENV_VAR}, {Path.cwd()}, {home}); run `vocabd init [DIR]`"
    )
