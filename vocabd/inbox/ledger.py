"""`data/inbox_state.json`: what the inbox ingested, when, and where it went (content hashes for de-dup)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from vocabd.clock import now_iso
from vocabd.files import CorruptFile, read_json, write_json
from vocabd.workspace import INBOX_STATE, Workspace

_lock = threading.Lock()


def state_path(ws: Workspace) -> Path:
    return ws.data / INBOX_STATE


def read_state(ws: Workspace) -> dict[str, Any]:
    """{"seq": n, "items": [{seq, kind, hash, files, dest, ingested}]}; an absent file is an empty ledger."""
    try:
        state = read_json(state_path(ws))
    except CorruptFile as e:
        from vocabd.errors import WorkspaceError

        raise WorkspaceError(f"{e}: an unreadable inbox ledger; run `vocabd doctor`") from None
    if state is None:
        return {"seq": 0, "items": []}
    if not _is_ledger(state):
        from vocabd.errors import WorkspaceError

        raise WorkspaceError(f"{state_path(ws)}: not an inbox ledger (expected {{\"seq\": n, \"items\": [...]}}); "
                             "run `vocabd doctor`")
    state.setdefault("seq", 0)
    state.setdefault("items", [])
    return state


def _is_ledger(state: Any) -> bool:
    if not isinstance(state, dict) or not isinstance(state.get("seq", 0), int):
        return False
    items = state.get("items", [])
    return isinstance(items, list) and all(
        isinstance(i, dict) and isinstance(i.get("seq"), int) and isinstance(i.get("files", []), list) for i in items)


def _write_state(ws: Workspace, state: dict[str, Any]) -> None:
    write_json(state_path(ws), state)


def find_hash(ws: Workspace, digest: str, kind: str | None = None) -> dict[str, Any] | None:
    """The ledger item already ingested with this content hash (in the role `kind`, when given), if any."""
    for item in read_state(ws)["items"]:
        if item.get("hash") == digest and kind in (None, item.get("kind")):
            return item
    return None


def record(ws: Workspace, kind: str, digest: str, files: list[str], dest: str, material: bool = True,
           **extra: Any) -> dict[str, Any]:
    """Append an ingested item. `seq` counts new training material: it rises only when `material`
    (a jargon list with no new terms is ingested but is no reason to retrain)."""
    with _lock:
        state = read_state(ws)
        state["seq"] += int(material)
        item = {"seq": state["seq"], "kind": kind, "hash": digest, "files": files, "dest": dest,
                "material": material, "ingested": now_iso(), "ingested_epoch": time.time(), **extra}
        state["items"].append(item)
        state["last_ingest"] = item["ingested"]
        _write_state(ws, state)
        return item


def material_since(ws: Workspace, seq: int) -> list[dict[str, Any]]:
    """Ingested material not yet covered by a chain that started at material counter `seq`."""
    return [item for item in read_state(ws)["items"] if item["seq"] > seq and item.get("material", True)]
