"""`vocabd correct` with a workspace an attacker wrote into: planted links, planted rows of the kept-transcript
index, ids that name paths. The real CLI and the real store (`transcribe --keep` keeps through `store.keep`)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from vocabd.audio import write_wav
from vocabd.cli import main
from vocabd.corrections.store import index_path, keep


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def outside(outside):
    """The outside folder, with a recording beside its file."""
    t = np.arange(16000) / 16000
    write_wav(outside / "secret.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    return outside


def kept(ws) -> dict:
    t = np.arange(32000) / 16000
    return keep(ws, ws.root / "note.wav", (0.1 * np.sin(2 * np.pi * 300 * t)).astype(np.float32),
                "restart cube control", "base")


def plant_row(ws, **fields) -> dict:
    row = kept(ws) | fields
    index_path(ws).write_text(json.dumps(row) + "\n", encoding="utf-8")
    return row


def test_a_planted_part_link_is_not_written_through(ws, outside):
    row = kept(ws)
    victim = outside / "victim.txt"
    os.symlink(victim, ws.inbox / f"correction-{row['id']}.txt.part")
    os.symlink(outside / "secret.wav", ws.inbox / f"correction-{row['id']}.wav.part")
    done = cli("correct", row["id"], "--text", "restart kubectl", "-w", str(ws.root))
    assert done.exit_code == 0, done.output
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert (ws.inbox / f"correction-{row['id']}.txt").read_text(encoding="utf-8").strip() == "restart kubectl"
    assert not (ws.inbox / f"correction-{row['id']}.txt").is_symlink()
    assert (ws.inbox / f"correction-{row['id']}.wav").read_bytes() == (ws.data / row["audio"]).read_bytes()


@pytest.mark.parametrize("audio", ["ABSOLUTE", "../../outside/secret.wav", "transcripts/../../../outside/secret.wav"])
def test_a_kept_audio_path_leaving_the_workspace_is_refused(ws, outside, audio):
    row = plant_row(ws, audio=str(outside / "secret.wav") if audio == "ABSOLUTE" else audio)
    done = cli("correct", row["id"], "--text", "restart kubectl", "-w", str(ws.root))
    assert done.exit_code == 1 and row["id"] in done.output and "transcripts" in done.output, done.output
    assert not any(p for p in ws.inbox.iterdir() if p.is_file())


def test_a_kept_audio_that_is_a_link_is_refused(ws, outside):
    row = kept(ws)
    (ws.data / row["audio"]).unlink()
    os.symlink(outside / "secret.wav", ws.data / row["audio"])
    done = cli("correct", row["id"], "--text", "restart kubectl", "-w", str(ws.root))
    assert done.exit_code == 1 and "link" in done.output, done.output
    assert not any(p for p in ws.inbox.iterdir() if p.is_file())


@pytest.mark.parametrize("typed", ["../../outside/x", "t001/../../x", "..", "t001-abcdef/x"])
def test_ids_naming_paths_are_refused(ws, outside, typed):
    kept(ws)
    done = cli("correct", typed, "--text", "restart kubectl", "-w", str(ws.root))
    assert done.exit_code == 1 and "not a kept transcript id" in done.output, done.output
    assert sorted(p.name for p in outside.iterdir()) == ["secret.wav", "victim.txt"]


def test_a_planted_row_whose_id_is_a_path_writes_nothing_outside(ws, outside):
    evil = "../../outside/evil"
    plant_row(ws, id=evil)
    done = cli("correct", evil, "--text", "restart kubectl", "-w", str(ws.root))
    assert done.exit_code == 1
    assert sorted(p.name for p in outside.iterdir()) == ["secret.wav", "victim.txt"]
    assert not any(p for p in ws.inbox.iterdir() if p.is_file())


def test_an_id_is_matched_exactly_not_as_a_prefix(ws):
    row = kept(ws)
    number = row["id"].split("-")[0]
    for typed in (number, row["id"][:-1], "t00"):
        done = cli("correct", typed, "--text", "restart kubectl", "-w", str(ws.root))
        assert done.exit_code == 1 and row["id"] in done.output, (typed, done.output)  # listed among recent ones
    assert cli("correct", row["id"], "--text", "restart kubectl", "-w", str(ws.root)).exit_code == 0
