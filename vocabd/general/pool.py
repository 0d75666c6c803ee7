"""Which general-speech pool a workspace uses, built or fetched once per user and recorded in the workspace.

`ensure_pool` runs in the chain's synthesize stage. With `[general] pool = "auto"` (the default) it takes
the hub pool when it is cached or downloadable, else builds the synthetic one; `hub` or `synthetic` force
one, `none` turns the default off. It does nothing when the user brought both a replay pool (`[train]
replay`) and a safety set (`data/safety_eval.jsonl`). The choice is written to `data/general_pool.json`,
which the train stage (replay), the evaluate stage (yardstick) and the report read. A synthetic pool's
yardstick gets a real part beside it (`real.py`: recordings that installed packages ship) whenever there is
one, because training on synthetic speech improves a synthetic yardstick and so cannot show harm to real voices.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from vocabd.config import GENERAL_POOLS
from vocabd.errors import VocabdError
from vocabd.files import read_json, write_json
from vocabd.log import get_logger
from vocabd.manifest import has_rows
from vocabd.workspace import GENERAL_POOL, SAFETY_EVAL, Workspace

log = get_logger(__name__)

CHOICES = GENERAL_POOLS
POOL_FILE = "pool.json"


def general_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vocabd")) / "general"


def ensure_pool(ws: Workspace, progress: bool = True) -> dict[str, Any] | None:
    """The workspace's default pool (built or fetched when missing), recorded in data/general_pool.json."""
    choice = ws.config.general.pool
    if choice not in CHOICES:
        raise VocabdError(f"general.pool must be one of {', '.join(CHOICES)}, got {choice!r} ({ws.config_file})")
    needed = {"replay": not ws.config.train.replay, "yardstick": not has_rows(ws.manifest(SAFETY_EVAL))}
    if choice == "none" or not any(needed.values()):
        why = "turned off ([general] pool = \"none\")" if choice == "none" else \
            "not needed: the workspace has its own replay pool and safety set"
        return _record(ws, None, why)
    used_for = [part for part, wanted in needed.items() if wanted]
    if (known := _still_valid(ws, choice, used_for)) is not None:
        return known  # one pool per workspace: later chains compare with earlier ones on the same yardstick
    pool = None
    if choice in ("auto", "hub"):
        pool = _hub_pool(required=choice == "hub")
    if pool is None:
        pool = _synthetic_pool(ws, progress)
    pool["used_for"], pool["choice"] = used_for, choice
    pool["real_yardstick"] = _real_yardstick() if "yardstick" in used_for and not pool["real"] else None
    return _record(ws, pool, "")


def read_pool(ws: Workspace) -> dict[str, Any] | None:
    """What `ensure_pool` chose for this workspace (None: no default pool in use)."""
    record = read_json(ws.data / GENERAL_POOL)
    return record.get("pool") if record else None


def pool_manifest(ws: Workspace, part: str) -> Path | None:
    """The default pool's replay or yardstick manifest, when the workspace uses it for that."""
    pool = read_pool(ws)
    if not pool or part not in pool.get("used_for", []):
        return None
    path = Path(pool["folder"]) / f"{part}.jsonl"
    return path if has_rows(path) else None


def real_manifest(ws: Workspace) -> Path | None:
    """The real part of a synthetic pool's yardstick, when the workspace measures on the pool's yardstick."""
    pool = read_pool(ws)
    real = pool.get("real_yardstick") if pool and "yardstick" in pool.get("used_for", []) else None
    path = Path(real["folder"]) / "real_yardstick.jsonl" if real else None
    return path if path is not None and has_rows(path) else None


def yardstick_kind(ws: Workspace) -> str:
    """What the safety yardstick is made of, in the words the report and the status use."""
    if has_rows(ws.manifest(SAFETY_EVAL)):
        return "your own (data/safety_eval.jsonl)"
    pool = read_pool(ws)
    if not pool or "yardstick" not in pool.get("used_for", []):
        return "none"
    if pool["real"]:
        return "real"
    if real_manifest(ws) is not None:
        return "synthetic + a small real part"
    return "SYNTHETIC ONLY"


def status_line(ws: Workspace) -> str | None:
    """One line for `vocabd status`: which general speech protects and measures the adapters."""
    own_safety = has_rows(ws.manifest(SAFETY_EVAL))
    pool = read_pool(ws)
    if pool is None and not (ws.data / GENERAL_POOL).exists() and not own_safety:
        return None  # no chain has chosen yet
    parts = []
    replay = ws.config.train.replay or (pool and "replay" in pool["used_for"] and
                                        f"{pool['kind']} pool, {pool['replay']['clips']} clips")
    parts.append(f"replay: {replay or 'none'}")
    if own_safety:
        parts.append("yardstick: data/safety_eval.jsonl")
    elif pool and "yardstick" in pool["used_for"]:
        real = pool.get("real_yardstick")
        parts.append(f"yardstick: {pool['kind']} pool, {pool['yardstick']['clips']} clips, "
                     f"{pool['yardstick']['words']} words ({'real' if pool['real'] else 'SYNTHETIC'})"
                     + (f" + real part, {real['clips']} clips, {real['words']} words, "
                        f"{len(real['speakers'])} speakers" if real else
                        "" if pool["real"] else ": it cannot see harm to real voices"))
    else:
        parts.append("yardstick: NONE: the gate keeps adapters out ([gate] require_safety)"
                     if ws.config.gate.require_safety else
                     "yardstick: NONE: adapters are promoted unchecked ([gate] require_safety = false)")
    return "; ".join(parts)


def summary(pool: dict[str, Any], part: str) -> str:
    """e.g. 'synthetic speech: 134 clips, 1330 words, 7.3 min, 4 voices/speakers (espeak:en-us+m8, ...)'."""
    d = pool[part]
    names = ", ".join(d["speakers"][:8]) + (", ..." if len(d["speakers"]) > 8 else "")
    return (f"{'real' if pool['real'] else 'synthetic'} speech: {d['clips']} clips, {d['words']} words, "
            f"{d['minutes']:.1f} min, {len(d['speakers'])} voices/speakers ({names})")


def describe(pool: dict[str, Any]) -> str:
    """The whole pool in one sentence, for the report."""
    parts = "; ".join(f"{part}: {summary(pool, part)}" for part in ("replay", "yardstick") if part in pool["used_for"])
    if pool.get("real_yardstick"):
        parts += f"; real part of the yardstick: {describe_real(pool['real_yardstick'])}"
    return f"{pool['kind']}, {pool['what']}; {parts}"


def describe_real(real: dict[str, Any]) -> str:
    return (f"real speech that installed packages ship ({', '.join(real['sources'])}): {real['clips']} clips, "
            f"{real['words']} words, {real['minutes']:.1f} min, {len(real['speakers'])} speakers")


def _still_valid(ws: Workspace, choice: str, used_for: list[str]) -> dict[str, Any] | None:
    pool = read_pool(ws)
    if not pool or pool.get("choice") != choice or pool.get("used_for") != used_for:
        return None
    if ws.config.general.sentences != pool.get("sentences", ws.config.general.sentences):
        return None
    if "yardstick" in used_for and not pool["real"] and pool.get("real_yardstick") != _real_yardstick():
        return None  # real speech was installed or removed since: the same synthetic part, a new real part
    return pool if _cached(Path(pool["folder"])) is not None else None


def _record(ws: Workspace, pool: dict[str, Any] | None, why: str) -> dict[str, Any] | None:
    write_json(ws.data / GENERAL_POOL, {"pool": pool, "why_none": why or None})
    if pool is None:
        log.info("general_pool_none", reason=why)
    else:
        log.info("general_pool_chosen", kind=pool["kind"], folder=pool["folder"], used_for=pool["used_for"],
                 replay_clips=pool["replay"]["clips"], yardstick_clips=pool["yardstick"]["clips"])
    return pool


def _hub_pool(required: bool) -> dict[str, Any] | None:
    from vocabd.general import hub

    dest = general_cache_dir() / f"hub-{hub.REVISION[:12]}"
    if (cached := _cached(dest)) is not None:
        return cached
    try:
        shard = hub.fetch_shard()
    except hub.HubUnavailable as e:
        if required:
            raise
        log.info("general_pool_hub_unavailable", reason=str(e), fallback="synthetic")
        return None
    return _build(dest, lambda tmp: hub.build_hub_pool(tmp, shard))


def _synthetic_pool(ws: Workspace, progress: bool) -> dict[str, Any]:
    from vocabd.general import synthetic
    from vocabd.general.texts import load_sentences

    sentences = load_sentences(limit=ws.config.general.sentences)
    synths = synthetic.synthesizers(max(1, ws.config.synthesis.workers))
    dest = general_cache_dir() / f"synthetic-{synthetic.pool_key(sentences, synths)}"
    pool = _cached(dest) or _build(dest, lambda tmp: synthetic.build_synthetic_pool(
        tmp, sentences, synths, workers=ws.config.synthesis.workers, progress=progress))
    return {**pool, "sentences": ws.config.general.sentences}


def _real_yardstick() -> dict[str, Any] | None:
    """The real part (built once per user), or None when no package with real speech is installed."""
    from vocabd.general import real
    from vocabd.general.synthetic import describe as describe_clips

    pieces = real.available_pieces()
    if not pieces:
        return None
    dest = general_cache_dir() / f"real-{real.pieces_key(pieces)}"

    def make(tmp: Path) -> dict[str, Any]:
        clips = real.build_real_yardstick(tmp, pieces)
        return {**describe_clips(clips), "sources": sorted({p.source for p in pieces})}

    return _cached(dest, ("real_yardstick",)) or _build(dest, make, ("real_yardstick",))


def _cached(dest: Path, parts: tuple[str, ...] = ("replay", "yardstick")) -> dict[str, Any] | None:
    try:
        pool = json.loads((dest / POOL_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not all(has_rows(dest / f"{part}.jsonl") for part in parts):
        return None
    return {**pool, "folder": str(dest)}


def _build(dest: Path, make, parts: tuple[str, ...] = ("replay", "yardstick")) -> dict[str, Any]:
    """Build into a temporary sibling and rename it into place, under a lock: a half-built pool is never seen
    and two workspaces building at once make it once."""
    from filelock import FileLock

    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock"):
        if (cached := _cached(dest, parts)) is not None:
            return cached
        tmp = dest.with_name(dest.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        pool = make(tmp)
        write_json(tmp / POOL_FILE, pool)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return {**pool, "folder": str(dest)}
