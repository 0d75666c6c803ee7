"""The workspace's active model: its base and the adapter the promotion gate chose (`data/active.json`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError
from vocabd.files import CorruptFile, read_json, write_json
from vocabd.workspace import ACTIVE_FILE, Workspace


def active_path(ws: Workspace) -> Path:
    return ws.data / ACTIVE_FILE


def read_active(ws: Workspace) -> dict[str, Any] | None:
    """The promoted adapter's record; CorruptFile, with what to do, when torn."""
    path = active_path(ws)
    try:
        return read_json(path)
    except CorruptFile as e:
        raise CorruptFile(f"{e}: run `vocabd doctor` (`--repair` sets {path.name} aside)") from None


def write_active(ws: Workspace, active: dict[str, Any]) -> None:
    write_json(active_path(ws), active)


@dataclass(frozen=True)
class ActiveModel:
    base: str  # hub id, folder or "moonshine-cpp"
    adapter: Path | None  # None: no adapter was ever promoted
    experiment: str | None = None


def active_model(ws: Workspace) -> ActiveModel:
    """What `vocabd transcribe` would use in `ws`; the adapter must be a folder inside the workspace's runs/."""
    active = read_active(ws) or {}
    if not active.get("adapter"):
        return ActiveModel(base=ws.config.model.base, adapter=None)
    adapter = (ws.root / active["adapter"]).resolve()
    if not adapter.is_relative_to(ws.runs.resolve()):
        raise VocabdError(f"{active_path(ws)}: adapter {active['adapter']!r} leaves the workspace's runs/ folder")
    if not (adapter / "adapter_config.json").is_file():
        raise VocabdError(f"{active_path(ws)}: adapter {adapter} is missing (no adapter_config.json)")
    return ActiveModel(base=str(active.get("model") or ws.config.model.base), adapter=adapter,
                       experiment=active.get("experiment"))


def active_stamp(ws: Workspace) -> tuple[int, int] | None:
    """Changes whenever data/active.json is rewritten (it is replaced atomically): (inode, mtime ns)."""
    try:
        info = active_path(ws).stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns
