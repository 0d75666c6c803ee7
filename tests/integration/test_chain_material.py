"""What counts as new material once a chain has started: the pieces the chain itself cuts from long recordings
are not. A default workspace, real espeak speech over 30 s, the real split worker with the offline base model
(the only model whose words align, so pieces are kept), the real chain record and material check.

Loads the real model: run it under the heavy lock (`flock /tmp/vocabd-heavy.lock`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tiny import speech_wav
from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.inbox.drops import handle, inbox_entries
from vocabd.daemon.material import new_material
from vocabd.chain import stages as pipeline
from vocabd.workspace import init_workspace

SENTENCES = ["please call the front desk before noon", "the meeting moves to three on thursday",
             "send the invoice to accounts payable", "check the backup logs tonight",
             "restart the voicemail server after the update", "dial the operator for help"]
OFFLINE = sorted((Path.home() / ".cache" / "vocabd" / "models").glob("moonshine-base-cpp-*"))

pytestmark = pytest.mark.skipif(not OFFLINE, reason="the offline base model is not built (vocabd model fetch)")


@pytest.fixture
def ws(tmp_path):
    """A default workspace given a jargon list, a short recording and one of 40 s, all taken in."""
    ws = init_workspace(tmp_path / "ws")
    pause = np.zeros(int(0.7 * SAMPLE_RATE), np.float32)
    clips = [np.concatenate([load_audio(speech_wav(tmp_path / f"{i}.wav", s)), pause]) for i, s in enumerate(SENTENCES)]
    audio, words = [], []
    while sum(len(a) for a in audio) < 40 * SAMPLE_RATE:
        audio += clips
        words += SENTENCES
    write_wav(ws.inbox / "talk.wav", np.concatenate(audio))
    (ws.inbox / "talk.txt").write_text(". ".join(words) + ".", encoding="utf-8")
    write_wav(ws.inbox / "short.wav", clips[0])
    (ws.inbox / "short.txt").write_text(SENTENCES[0], encoding="utf-8")
    (ws.inbox / "terms.txt").write_text("PBX\nkubectl\n", encoding="utf-8")
    assert {o.status for o in handle(ws, inbox_entries(ws))} == {"done"}
    return ws


def rows(ws) -> int:
    return sum(len(ws.manifest(n).read_text().splitlines()) for n in ("my_voice_train", "my_voice_eval")
               if ws.manifest(n).exists())


def test_the_pieces_a_chain_cuts_from_its_long_recordings_start_no_second_chain(ws):
    assert new_material(ws)
    name, _, _ = pipeline.start_chain(ws)
    assert not new_material(ws)
    before = rows(ws)
    pipeline.split_long_recordings(ws, name)  # what the chain's first stage does first
    assert rows(ws) > before, "no piece was kept: the test would not test anything"
    assert not new_material(ws)


def test_material_that_arrives_while_the_chain_runs_still_starts_the_next(ws):
    name, _, _ = pipeline.start_chain(ws)
    pipeline.split_long_recordings(ws, name)
    (ws.inbox / "more.txt").write_text("IAX2\n", encoding="utf-8")
    assert [o.status for o in handle(ws, inbox_entries(ws))] == ["done"]
    assert new_material(ws)
