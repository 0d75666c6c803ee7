"""Verbs that read workspace material take in the inbox first; `vocabd ingest` on its own."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tiny import speech_wav
from vocabd.cli import main
from vocabd.chain.lock import DaemonLock
from vocabd.split import split_for_text
from vocabd.workspace import Workspace, init_workspace

JARGON = "PBX | P B X\nkubectl\nops@acme.io\n"


def fresh_ws(tmp_path) -> Workspace:
    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text('[synthesis]\nbackend = "espeak"\n')
    return ws


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def a_training_sentence() -> str:
    """A transcript the stable split puts on the training side."""
    for n in range(100):
        text = f"Please restart the PBX before meeting number {n} starts."
        if split_for_text(text) == "train":
            return text
    raise AssertionError("no training-side sentence found")


def test_synthesize_takes_in_a_jargon_list_waiting_in_the_inbox(tmp_path):
    ws = fresh_ws(tmp_path)
    (ws.inbox / "terms.txt").write_text(JARGON)
    out = cli("synthesize", "-w", str(ws.root), "--count", "3", "--phase", "mini")
    assert out.exit_code == 0, out.output
    assert "terms.txt" in out.stderr and "done" in out.stderr
    assert "3 clips" in out.stdout
    assert (ws.inbox / "done" / "terms.txt").is_file() and (ws.data / "jargon.txt").is_file()
    assert not (ws.inbox / "terms.txt").exists()


def test_ingest_reports_each_file_and_fails_on_a_rejected_one(tmp_path):
    ws = fresh_ws(tmp_path)
    text = a_training_sentence()
    (ws.inbox / "terms.txt").write_text(JARGON)
    speech_wav(ws.inbox / "note1.wav", text)
    (ws.inbox / "note1.txt").write_text(text + "\n")
    (ws.inbox / "slides.pdf").write_bytes(b"%PDF-1.4")
    out = cli("ingest", "-w", str(ws.root))
    assert out.exit_code == 1
    lines = out.stdout.splitlines()
    assert any(line.startswith("done") and "terms.txt" in line and "3 terms" in line for line in lines), lines
    assert any(line.startswith("done") and "note1.wav, note1.txt" in line and "my_voice_train" in line
               for line in lines), lines
    assert any(line.startswith("rejected") and "slides.pdf" in line and "unsupported" in line for line in lines)
    rows = [json.loads(r) for r in ws.manifest("my_voice_train").read_text().splitlines()]
    assert [r["text"] for r in rows] == [text]
    assert (ws.inbox / "rejected" / "slides.pdf.reason.txt").is_file()
    again = cli("ingest", "-w", str(ws.root))
    assert again.exit_code == 0 and "nothing waits" in again.stdout


def test_mix_takes_in_recordings_waiting_in_the_inbox(tmp_path):
    ws = fresh_ws(tmp_path)
    text = a_training_sentence()
    speech_wav(ws.inbox / "take1.wav", text)
    (ws.inbox / "take1.txt").write_text(text)
    out = cli("mix", "-w", str(ws.root), "--phase", "mini")
    assert out.exit_code == 0, out.output
    assert "take1.wav" in out.stderr
    assert "mixed_train_mini.jsonl: 1 rows" in out.stdout
    assert [json.loads(r)["text"] for r in ws.manifest("mixed_train_mini").read_text().splitlines()] == [text]


def test_with_a_daemon_holding_the_workspace_the_verb_leaves_the_inbox_and_says_what_to_run(tmp_path):
    ws = fresh_ws(tmp_path)
    (ws.inbox / "terms.txt").write_text(JARGON)
    with DaemonLock(ws):
        out = cli("synthesize", "-w", str(ws.root), "--count", "3", "--phase", "mini")
    assert out.exit_code == 1
    assert (ws.inbox / "terms.txt").is_file()
    assert "the daemon" in out.stderr and "vocabd ingest" in out.stderr
