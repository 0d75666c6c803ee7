"""A workspace: `vocabd.toml`, `inbox/`, `data/`, `runs/` and `queue.db` in one folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from vocabd.config import CONFIG_NAME, Config, load_config, render_config
from vocabd.errors import WorkspaceError

ENV_VAR = "VOCABD_HOME"

# Data files (DESIGN.md §3).
MY_VOICE_TRAIN = "my_voice_train"
MY_VOICE_EVAL = "my_voice_eval"
SAFETY_EVAL = "safety_eval"


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

    def run_dir(self, name: str) -> Path:
        return self.runs / name


def init_workspace(path: Path) -> Workspace:
    """Create (or complete) a workspace at `path`; an existing `vocabd.toml` is kept."""
    root = path.expanduser().resolve()
    for sub in ("inbox", "data", "runs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config_file = root / CONFIG_NAME
    if not config_file.exists():
        config_file.write_text(render_config(Config()), encoding="utf-8")
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
    raise WorkspaceError(
        f"no workspace found (tried --workspace, ${ENV_VAR}, {Path.cwd()}, {home}); run `vocabd init [DIR]`"
    )
