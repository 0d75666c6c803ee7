"""A manifest that is itself a symbolic link must not move the folder its audio may come from: real files, the
real manifest reader and the audio root the training and evaluation workers use."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from vocabd.errors import VocabdError
from vocabd.manifest import audio_root, load_manifest, read_manifest
from vocabd.workspace import init_workspace


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.fixture
def planted(tmp_path):
    """A workspace whose data/my_voice_train.jsonl links to a manifest outside, naming audio beside it."""
    ws = init_workspace(tmp_path / "ws")
    outside = tmp_path / "outside"
    outside.mkdir()
    sf.write(outside / "secret.wav", tone(1.0), 16000)
    (outside / "m.jsonl").write_text(json.dumps({"audio": "secret.wav", "text": "a private recording"}) + "\n")
    link = ws.manifest("my_voice_train")
    link.symlink_to(outside / "m.jsonl")
    return ws, link, outside


def test_the_audio_root_of_a_linked_manifest_is_the_workspace(planted):
    ws, link, _ = planted
    assert audio_root(link, ws.root) == ws.root.resolve()


@pytest.mark.parametrize("root", ["workspace", "default"])
def test_a_manifest_linking_out_of_the_workspace_is_refused(planted, root):
    ws, link, _ = planted
    given = audio_root(link, ws.root) if root == "workspace" else None
    with pytest.raises(VocabdError, match="symbolic link") as refused:
        read_manifest(link, root=given)
    assert "my_voice_train.jsonl" in str(refused.value)
    with pytest.raises(VocabdError, match="symbolic link"):
        load_manifest(link, root=given, check_audio=False)


def test_allow_outside_still_reads_it(planted):
    ws, link, outside = planted
    [clip], problems = read_manifest(link, root=ws.root, allow_outside=True)
    assert not problems and clip.audio.resolve() == (outside / "secret.wav").resolve()


def test_a_link_to_a_manifest_inside_the_workspace_is_read(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    sf.write(ws.data / "take.wav", tone(1.0), 16000)
    (ws.data / "real.jsonl").write_text(json.dumps({"audio": "take.wav", "text": "mine"}) + "\n")
    ws.manifest("my_voice_train").symlink_to(ws.data / "real.jsonl")
    [clip], problems = read_manifest(ws.manifest("my_voice_train"), root=ws.root)
    assert not problems and clip.text == "mine"
