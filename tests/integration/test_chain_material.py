"""Long recordings as a chain's material: what counts as new material once a chain has started (the pieces the
chain itself cuts are not), and long recordings alone making a whole chain. A default workspace, real espeak
speech over 30 s, the real split worker with the offline base model (the only model whose words align, so
pieces are kept), the real chain record and material check.

Loads the real model: run it under the heavy lock (`flock /tmp/vocabd-heavy.lock`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny import speech_wav, tiny_workspace_config
from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.inbox.drops import handle, inbox_entries
from vocabd.daemon.material import new_material
from vocabd.chain import record as state
from vocabd.chain import stages as pipeline
from vocabd.chain.foreground import run_foreground
from vocabd.workspace import init_workspace, open_workspace

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


TALKS = [  # one recording each, every sentence said once (a text said over and over aligns ambiguously)
    ["the build finished before lunch on monday", "we moved the release to next thursday",
     "please review the open pull requests today", "the staging server needs a restart tonight",
     "the patient arrives at nine in the morning", "bring the test results to the front desk",
     "the doctor will call you back after two", "remember to book the follow up visit",
     "buy milk and bread on the way home", "the library closes early on saturday",
     "pick up the parcel from the post office", "water the plants in the garden before dark"],
    ["the train to the coast leaves at noon", "our team meets in the small room upstairs",
     "send the slides to everyone after the call", "the printer on the third floor is jammed again",
     "she wrote the report over the long weekend", "the new laptop arrives early next week",
     "turn off the lights when you leave the office", "the quarterly numbers look better than expected",
     "a storm is coming in from the west tonight", "the kitchen needs a new coat of paint",
     "my brother plays the piano every evening", "we had soup and salad for dinner"],
    ["the bus was late again this morning", "we painted the fence blue last summer",
     "the museum opens its new wing in april", "he forgot his umbrella at the station",
     "the cat sleeps on the warm windowsill", "they planted three apple trees by the road",
     "the concert was moved to the larger hall", "my neighbour fixed the broken gate",
     "the bakery sells fresh rolls every morning", "we walked along the river after lunch",
     "the children built a castle in the sand", "the meeting notes are on the shared drive"],
]


def test_long_recordings_alone_are_cut_trained_on_and_measured(tmp_path, tiny_model, monkeypatch):
    """A new user's only drops: three long recordings with their transcripts, no jargon list, no short clip.
    The cut runs with the offline base model (the only one whose words align); the chain then goes on with a
    tiny model (`vocabd run --foreground`'s driver), so training and evaluation take seconds."""
    monkeypatch.setenv("VOCABD_POLL_SECONDS", "0.3")
    ws = init_workspace(tmp_path / "ws")
    pause = np.zeros(int(0.7 * SAMPLE_RATE), np.float32)
    for n, sentences in enumerate(TALKS):
        audio = [np.concatenate([load_audio(speech_wav(tmp_path / f"{n}-{i}.wav", s)), pause])
                 for i, s in enumerate(sentences)]
        write_wav(ws.inbox / f"talk{n}.wav", np.concatenate(audio))
        (ws.inbox / f"talk{n}.txt").write_text(". ".join(sentences) + ".", encoding="utf-8")
    assert {o.status for o in handle(ws, inbox_entries(ws))} == {"done"}
    name, _, _ = pipeline.start_chain(ws)
    assert state.current(ws).material.long_recordings == 3
    assert pipeline.split_long_recordings(ws, name) is None  # what the chain's first stage does first
    material = pipeline.snapshot_material(ws)
    assert material.long_recordings == 0 and material.my_voice_train >= 3 and material.my_voice_eval >= 1, material

    ws.config_file.write_text(tiny_workspace_config(tiny_model))
    final = run_foreground(open_workspace(ws.root), retry_delay=0.1)

    assert (final["name"], final["state"]) == (name, "done"), final
    report = json.loads((ws.run_dir(name) / "report.json").read_text())
    primary = report["table"][0]
    assert (primary["set"], primary["kind"], primary["clips"]) == ("primary", "real", material.my_voice_eval)
    assert report["data"]["mixed_sources"] == {"real": material.my_voice_train} and report["data"]["synthetic_clips"] == 0
    assert report["gate"] is not None and report["terms"] == []
    text = (ws.run_dir(name) / "report.md").read_text()
    assert "trained on your recordings alone" in text and "No real recordings were available" not in text
    assert all(f"- long recording talk{n}.wav" in text for n in range(3))
