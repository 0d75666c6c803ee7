"""The default general-speech pool: which one a workspace gets, and a yardstick disjoint from the replay."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import soundfile as sf

from vocabd.general import hub, pool, synthetic
from vocabd.general.texts import load_sentences, split_texts
from vocabd.evaluation.runner import safety_set
from vocabd.manifest import load_manifest
from vocabd.split import text_key
from vocabd.training.options import replay_manifest
from vocabd.workspace import init_workspace


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty per-test caches: vocabd's (the pools) and the Hugging Face hub's, offline."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path


def workspace(root, general: str = "", extra: str = ""):
    """A default workspace but for a tiny synthetic pool (10 sentences)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocabd.toml").write_text("[general]\nsentences = 10\n" + general + extra, encoding="utf-8")
    return init_workspace(root)


def speakers(manifest) -> set[str]:
    return {c.speaker for c in load_manifest(manifest, allow_outside=True)}


def texts(manifest) -> set[str]:
    return {text_key(c.text) for c in load_manifest(manifest, allow_outside=True)}


# the shipped sentences ------------------------------------------------------------------------------

def test_shipped_sentences_are_many_unique_cased_and_punctuated():
    sentences = load_sentences()
    assert len(sentences) >= 300 and len({text_key(s) for s in sentences}) == len(sentences)
    assert all(s[0].isupper() and s[-1] in ".?!" for s in sentences)
    replay, yardstick = split_texts(sentences)
    assert 0.1 < len(yardstick) / len(sentences) < 0.3
    assert not {text_key(s) for s in replay} & {text_key(s) for s in yardstick}


# offline: the synthetic pool --------------------------------------------------------------------------

def test_offline_default_workspace_gets_the_synthetic_pool_and_a_disjoint_yardstick(caches):
    ws = workspace(caches / "ws")
    chosen = pool.ensure_pool(ws, progress=False)
    assert chosen["kind"] == "synthetic" and chosen["real"] is False
    assert chosen["used_for"] == ["replay", "yardstick"]
    replay, (yardstick, describe) = replay_manifest(ws), safety_set(ws)
    assert replay.parent == yardstick.parent and str(caches / "cache") in str(replay)
    assert "never trained on" in describe and "synthetic" in describe
    # voices: the yardstick's are used by nothing that trains (replay, piper, the jargon espeak voices)
    from vocabd.tts.espeak import TRAIN_VOICES

    assert not speakers(replay) & speakers(yardstick)
    assert not {f"espeak:{v}" for v in TRAIN_VOICES} & speakers(yardstick)
    assert all(s.startswith("espeak:") for s in speakers(yardstick)) and len(speakers(replay)) >= 3
    assert not texts(replay) & texts(yardstick)
    assert "yardstick: synthetic pool" in pool.status_line(ws)
    record = json.loads((ws.data / "general_pool.json").read_text())
    assert record["pool"]["replay"]["clips"] == len(load_manifest(replay, allow_outside=True))

    again = pool.ensure_pool(workspace(caches / "ws2"), progress=False)  # a second workspace: the cached pool
    assert again["folder"] == chosen["folder"]


def test_perturbation_changes_tempo():
    audio = np.sin(np.arange(16000) / 5.0).astype(np.float32)
    assert len(synthetic.perturb(audio, 1.1)) < len(audio) < len(synthetic.perturb(audio, 0.9))


# the user's own material takes precedence -------------------------------------------------------------

def test_own_safety_set_takes_precedence_and_own_replay_turns_the_default_off(caches, tmp_path):
    from tiny import speech_wav

    ws = workspace(caches / "ws")
    clip = speech_wav(ws.data / "mine" / "a.wav", "Good morning to all of you.")
    ws.manifest("safety_eval").write_text(json.dumps({"audio": str(clip.relative_to(ws.data)),
                                                      "text": "Good morning to all of you."}) + "\n")
    chosen = pool.ensure_pool(ws, progress=False)
    assert chosen["used_for"] == ["replay"]
    assert safety_set(ws)[0] == ws.manifest("safety_eval") and replay_manifest(ws) is not None

    own = workspace(caches / "own", extra=f'[train]\nreplay = "{ws.manifest("safety_eval")}"\n')
    own.manifest("safety_eval").write_text(ws.manifest("safety_eval").read_text())
    assert pool.ensure_pool(own, progress=False) is None
    assert "not needed" in json.loads((own.data / "general_pool.json").read_text())["why_none"]


def test_pool_none_leaves_no_yardstick(caches):
    ws = workspace(caches / "ws", general='pool = "none"\n')
    assert pool.ensure_pool(ws, progress=False) is None
    assert safety_set(ws) is None and replay_manifest(ws) is None
    assert "yardstick: NONE: the gate keeps adapters out" in pool.status_line(ws)


# the hub pool, from a locally built hub cache ----------------------------------------------------------

def _flac(seconds: float, freq: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format="FLAC")
    return buf.getvalue()


def _speaker_ids(yardstick: bool, count: int) -> list[str]:
    ids = (str(n) for n in range(100, 10_000))
    return [s for s in ids if hub.is_yardstick_speaker(s) == yardstick][:count]


def build_hub_fixture(hf_home):
    """A tiny LibriTTS-R shard laid out the way huggingface_hub's cache stores a dataset snapshot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for speaker in _speaker_ids(False, 4) + _speaker_ids(True, 2):
        for n in range(3):
            rows.append({"audio": {"bytes": _flac(1.5 + n * 0.5, 200 + 40 * n), "path": f"{speaker}_{n}.wav"},
                         "text_normalized": f"Speaker {speaker} reads sentence number {n}, with care.",
                         "text_original": "", "speaker_id": speaker, "path": "", "chapter_id": "1",
                         "id": f"{speaker}_1_{n}"})
    rows.append({**rows[0], "id": "too-short", "audio": {"bytes": _flac(0.3, 300), "path": "x.wav"}})
    repo = hf_home / "hub" / f"datasets--{hub.REPO_ID.replace('/', '--')}"
    shard = repo / "snapshots" / hub.REVISION / hub.FILENAME
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), shard)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(hub.REVISION)
    return shard


def test_hub_pool_is_loaded_from_the_local_hub_cache(caches):
    build_hub_fixture(caches / "hf")
    ws = workspace(caches / "ws")
    chosen = pool.ensure_pool(ws, progress=False)
    assert chosen["kind"] == "hub" and chosen["real"] is True and "CC BY 4.0" in chosen["what"]
    replay, (yardstick, describe) = replay_manifest(ws), safety_set(ws)
    assert "real speech" in describe
    assert len(speakers(replay)) == 4 and len(speakers(yardstick)) == 2
    assert not speakers(replay) & speakers(yardstick) and not texts(replay) & texts(yardstick)
    clips = load_manifest(replay, allow_outside=True)
    assert len(clips) == 12 and all(abs(c.duration - d) < 0.01 for c, d in
                                    zip(sorted(clips, key=lambda c: c.id), [1.5, 2.0, 2.5] * 4))
    assert all(sf.info(str(c.audio)).samplerate == 16000 for c in clips)
    assert all(re.match(r"Speaker \d+ reads", c.text) for c in clips)


def test_hub_forced_but_unavailable_is_a_clear_error(caches):
    ws = workspace(caches / "ws", general='pool = "hub"\n')
    with pytest.raises(hub.HubUnavailable, match="not in the hub cache"):
        pool.ensure_pool(ws, progress=False)
