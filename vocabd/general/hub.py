"""The hub pool: real read English speech from LibriTTS-R on the Hugging Face Hub, fetched once.

LibriTTS-R (Koizumi et al. 2023; a restoration of LibriTTS, itself derived from LibriSpeech / LibriVox) is
CC BY 4.0: it may be used, cached and redistributed with attribution, and its transcripts keep the books'
casing and punctuation (LibriSpeech's own are upper case without punctuation: a replay of those would teach
exactly the style loss the pool is meant to prevent). One shard of the dev-clean split (about 380 MB, some
1,400 sentences) is downloaded into the Hugging Face cache; vocabd keeps a few hundred clips of it.

Speakers are divided by a stable hash: the yardstick's speakers are never replayed, and a yardstick text that
a replay speaker also reads is dropped.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.errors import VocabdError
from vocabd.hub import hub_offline, hub_reachable
from vocabd.log import get_logger
from vocabd.manifest import Clip, write_manifest
from vocabd.split import text_key

log = get_logger(__name__)

REPO_ID = "mythicinfinity/libritts_r"
REVISION = "410af11a6ee8b65462beff6dab7ae27a57d37073"  # pinned: the pool must not change under a user
FILENAME = "data/dev.clean/dev.clean-00000-of-00004.parquet"
LICENCE = "CC BY 4.0 (LibriTTS-R, Koizumi et al. 2023; from LibriVox recordings)"
COLUMNS = ("audio", "text_normalized", "speaker_id", "id")
YARDSTICK_SPEAKER_PERCENT = 25
REPLAY_CLIPS = 600
YARDSTICK_CLIPS = 120
MIN_WORDS, MIN_S, MAX_S = 4, 1.0, 15.0


class HubUnavailable(VocabdError):
    """The hub set is neither cached nor downloadable here: the caller falls back."""


def hub_cache_dir() -> Path:
    """huggingface_hub's cache, read at call time (HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                                            / "huggingface")
    return Path(home) / "hub"


def fetch_shard() -> Path:
    """The parquet shard from the local hub cache, or downloaded into it (unless HF_HUB_OFFLINE is set)."""
    from huggingface_hub import hf_hub_download

    args = dict(repo_id=REPO_ID, filename=FILENAME, repo_type="dataset", revision=REVISION,
                cache_dir=str(hub_cache_dir()))
    try:
        return Path(hf_hub_download(**args, local_files_only=True))
    except Exception as cached_error:  # not in the cache (LocalEntryNotFoundError and friends)
        if hub_offline():
            raise HubUnavailable(f"{REPO_ID} is not in the hub cache {hub_cache_dir()} and HF_HUB_OFFLINE is set "
                                 f"({type(cached_error).__name__})") from cached_error
    if not hub_reachable():
        raise HubUnavailable(f"{REPO_ID}: the Hugging Face Hub is unreachable from here")
    log.info("general_pool_downloading", repo=REPO_ID, file=FILENAME)
    try:
        return Path(hf_hub_download(**args))
    except Exception as e:  # hub errors are OSErrors, network errors vary: any of them means "not here"
        raise HubUnavailable(f"cannot fetch {REPO_ID} from the Hugging Face Hub: {str(e).splitlines()[0]}") from e


def is_yardstick_speaker(speaker: str) -> bool:
    return int(hashlib.sha256(speaker.encode("utf-8")).hexdigest()[:8], 16) % 100 < YARDSTICK_SPEAKER_PERCENT


def read_rows(shard: Path) -> list[dict[str, Any]]:
    """The shard's rows (audio bytes, text, speaker, id); a shard without those columns is an error."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(shard, columns=list(COLUMNS))
    except Exception as e:
        raise VocabdError(f"{shard}: not a readable {REPO_ID} parquet shard ({e})") from e
    return table.to_pylist()


def build_hub_pool(dest: Path, shard: Path, replay_clips: int = REPLAY_CLIPS,
                   yardstick_clips: int = YARDSTICK_CLIPS) -> dict:
    """Decode the chosen clips to 16 kHz WAV in `dest` and write replay.jsonl / yardstick.jsonl."""
    start = time.monotonic()
    rows = sorted(read_rows(shard), key=lambda r: hashlib.sha256(str(r["id"]).encode()).hexdigest())
    chosen: dict[str, list[Clip]] = {"replay": [], "yardstick": []}
    wanted = {"replay": replay_clips, "yardstick": yardstick_clips}
    replay_texts: set[str] = set()
    for row in sorted(rows, key=lambda r: is_yardstick_speaker(str(r["speaker_id"]))):  # replay rows first
        text = str(row.get("text_normalized") or "").strip()
        speaker = str(row["speaker_id"])
        part = "yardstick" if is_yardstick_speaker(speaker) else "replay"
        if len(chosen[part]) >= wanted[part] or len(text.split()) < MIN_WORDS:
            continue
        if part == "yardstick" and text_key(text) in replay_texts:
            continue
        clip = _decode(row, text, speaker, dest / "clips")
        if clip is None:
            continue
        chosen[part].append(clip)
        if part == "replay":
            replay_texts.add(text_key(text))
    if not chosen["replay"] or not chosen["yardstick"]:
        raise VocabdError(f"{shard}: too few usable clips for a pool ({len(chosen['replay'])} replay, "
                          f"{len(chosen['yardstick'])} yardstick)")
    for part, clips in chosen.items():
        write_manifest(dest / f"{part}.jsonl", clips)
    from vocabd.general.synthetic import describe

    log.info("general_pool_built", kind="hub", replay=len(chosen["replay"]), yardstick=len(chosen["yardstick"]),
             seconds=round(time.monotonic() - start, 1))
    return {"kind": "hub", "real": True, "what": f"real read English speech: {REPO_ID} ({FILENAME}), {LICENCE}",
            "repo": REPO_ID, "revision": REVISION, "build_seconds": round(time.monotonic() - start, 1),
            "replay": describe(chosen["replay"]), "yardstick": describe(chosen["yardstick"])}


def _decode(row: dict[str, Any], text: str, speaker: str, folder: Path) -> Clip | None:
    """One row's audio as a 16 kHz WAV; a clip that is unreadable or outside MIN_S-MAX_S is skipped."""
    import soundfile as sf
    import soxr

    data = (row.get("audio") or {}).get("bytes")
    if not data:
        return None
    try:
        info = sf.info(io.BytesIO(data))  # the header first: no decoding of a clip we would drop
        if not MIN_S <= info.duration <= MAX_S:
            return None
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        return None
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    name = hashlib.sha256(str(row["id"]).encode()).hexdigest()[:16]
    path = folder / f"{name}.wav"
    write_wav(path, audio, SAMPLE_RATE)
    return Clip(audio=path, text=text, duration=round(len(audio) / SAMPLE_RATE, 3), speaker=f"libritts_r:{speaker}",
                source="general", id=str(row["id"]))
