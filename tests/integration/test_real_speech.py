"""The real part of the general-speech yardstick: recordings installed packages ship, and the gate that uses it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from vocabd.evaluation.runner import real_safety_set
from vocabd.general import pool, real
from vocabd.manifest import load_manifest
from vocabd.workspace import init_workspace


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def workspace(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "vocabd.toml").write_text("[general]\nsentences = 10\n", encoding="utf-8")
    return init_workspace(root)


def pocketsphinx_layout(root, seconds=(2.0, 3.5)):
    """The Debian package's layout: librivox/<id>.wav and a `<s> words </s> (id)` transcription."""
    folder = root / "librivox"
    folder.mkdir(parents=True)
    lines = []
    for i, length in enumerate(seconds):
        t = np.arange(int(16000 * length)) / 16000
        sf.write(folder / f"clip-{i}.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
        lines.append(f"<s> he was not an ill disposed young man number {i} </s> (clip-{i})")
    lines.append("<s> a line whose audio is missing </s> (gone)")
    (folder / "transcription").write_text("\n".join(lines) + "\n")
    return root


def test_package_transcripts_become_clips_cut_and_resampled(tmp_path):
    pieces = [p for p in real.available_pieces(pocketsphinx_layout(tmp_path / "ps"))
              if p.source == "pocketsphinx-testdata"]
    assert [p.text for p in pieces] == ["He was not an ill disposed young man number 0.",
                                        "He was not an ill disposed young man number 1."]
    clips = real.build_real_yardstick(tmp_path / "out", pieces)
    assert [c.duration for c in clips] == [2.0, 3.5]
    assert load_manifest(tmp_path / "out" / "real_yardstick.jsonl", allow_outside=True)[0].speaker == \
        "librivox-sense-and-sensibility"


def test_an_annotated_file_that_changed_is_not_used(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    sf.write(package / "talk.wav", np.zeros(48000, dtype=np.float32), 48000)
    annotation = tmp_path / "real_speech.json"
    entry = {"package": "somepkg", "file": "talk.wav", "sha256": "0" * 64, "speaker": "s",
             "pieces": [{"start": 0.0, "end": 0.8, "text": "Hello there."}]}
    annotation.write_text(json.dumps([entry]))
    monkeypatch.setattr(real, "ANNOTATION", annotation)
    monkeypatch.setattr(real, "_package_folder", lambda name: package)
    assert real._annotated_pieces() == []
    entry["sha256"] = real._sha256(package / "talk.wav")
    annotation.write_text(json.dumps([entry]))
    (piece,) = real._annotated_pieces()
    assert (piece.start, piece.end, piece.text) == (0.0, 0.8, "Hello there.")


@pytest.mark.skipif(not real._annotated_pieces(), reason="moonshine-voice is not installed")
def test_the_shipped_annotation_fits_the_installed_recordings(tmp_path):
    pieces = real._annotated_pieces()
    clips = real.build_real_yardstick(tmp_path, pieces)
    assert len(clips) == len(pieces) >= 5  # every annotated piece is inside its recording and 0.5-30 s long
    assert sum(len(c.text.split()) for c in clips) >= 100


def test_a_synthetic_pool_gets_the_real_part_and_the_status_says_which_kind(caches, monkeypatch):
    layout = pocketsphinx_layout(caches / "ps")
    monkeypatch.setattr(real, "POCKETSPHINX_DATA", layout)
    monkeypatch.setattr(real, "ANNOTATION", caches / "none.json")  # only the pocketsphinx layout
    ws = workspace(caches / "ws")
    chosen = pool.ensure_pool(ws, progress=False)
    assert chosen["kind"] == "synthetic" and chosen["real_yardstick"]["clips"] == 2
    assert pool.yardstick_kind(ws) == "synthetic + a small real part"
    assert "(SYNTHETIC) + real part, 2 clips" in pool.status_line(ws)
    manifest, describe = real_safety_set(ws)
    assert len(load_manifest(manifest, allow_outside=True)) == 2 and "pocketsphinx-testdata" in describe

    monkeypatch.setattr(real, "POCKETSPHINX_DATA", caches / "nothing")
    bare = workspace(caches / "bare")
    assert pool.ensure_pool(bare, progress=False)["real_yardstick"] is None
    assert pool.yardstick_kind(bare) == "SYNTHETIC ONLY" and real_safety_set(bare) is None
    assert "cannot see harm to real voices" in pool.status_line(bare)
    assert pool.ensure_pool(ws, progress=False)["real_yardstick"] is None  # the real part went away: said so
