"""Corrections that retrain: transcribe --keep, vocabd correct, the pair as a recording, proposed jargon terms."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from click.testing import CliRunner

from tiny import speech_wav, tiny_workspace_config
from vocabd.cli import main


@pytest.fixture()
def ws(tiny_model, tmp_path):
    from vocabd.workspace import init_workspace, open_workspace

    root = init_workspace(tmp_path / "ws").root
    (root / "vocabd.toml").write_text(tiny_workspace_config(tiny_model))
    return open_workspace(root)


def cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def kept_id(ws, tmp_path) -> str:
    wav = speech_wav(tmp_path / "note.wav", "restart kubectl on the P B X")
    done = cli("transcribe", str(wav), "--keep", "-w", str(ws.root))
    assert done.exit_code == 0, done.output
    [row] = [json.loads(line) for line in (ws.data / "transcripts.jsonl").read_text().splitlines()]
    assert (ws.data / row["audio"]).is_file() and row["correction"] is None and row["hypothesis"] in done.output
    return row["id"]


def test_misheard_unknown_words_are_proposed():
    from vocabd.corrections.terms import propose_terms

    heard = "restart cube control on the p b x and call grafana"
    assert propose_terms(heard, "Restart kubectl on the PBX, and call Grafana.", set()) == ["kubectl", "PBX"]
    assert propose_terms(heard, "restart kubectl on the PBX", {"PBX"}) == ["kubectl"]
    assert propose_terms("deploy to k8s", "deploy to k8s", set()) == []  # heard right: nothing to learn


def test_correction_becomes_a_recording_and_terms_are_accepted_with_one_command(ws, tmp_path):
    from vocabd.inbox.drops import handle, inbox_entries

    kid = kept_id(ws, tmp_path)
    listed = cli("correct", "-w", str(ws.root))
    assert kid in listed.output and "heard:" in listed.output
    done = cli("correct", kid, "--text", "restart kubectl on the PBX", "-w", str(ws.root))
    assert done.exit_code == 0 and "proposed jargon terms: kubectl, PBX" in done.output
    assert cli("correct", kid, "--text", "again", "-w", str(ws.root)).exit_code == 1  # once only
    assert sorted(p.name for p in inbox_entries(ws)) == [f"correction-{kid}.txt", f"correction-{kid}.wav"]
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done"
    rows = [json.loads(line) for name in ("my_voice_train", "my_voice_eval") if ws.manifest(name).exists()
            for line in ws.manifest(name).read_text().splitlines()]
    assert [r["text"] for r in rows] == ["restart kubectl on the PBX"]
    assert "proposed   jargon from your corrections: PBX, kubectl" in cli("status", "-w", str(ws.root)).output
    accepted = cli("terms", "accept", "-w", str(ws.root))
    assert accepted.exit_code == 0 and "accepted kubectl, PBX" in accepted.output
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done" and outcome.drop.kind == "jargon"
    jargon = (ws.data / "jargon.txt").read_text()
    assert "kubectl" in jargon and "PBX" in jargon
    assert "proposed" not in cli("status", "-w", str(ws.root)).output
    assert cli("terms", "-w", str(ws.root)).output.strip() == "no proposed terms"


def test_correction_in_the_editor(ws, tmp_path):
    kid = kept_id(ws, tmp_path)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'w').write('fixed in the editor\\n')\n")
    done = cli("correct", kid, "-w", str(ws.root), env={"EDITOR": f"{sys.executable} {editor}"})
    assert done.exit_code == 0, done.output
    assert (ws.inbox / f"correction-{kid}.txt").read_text().strip() == "fixed in the editor"


def test_unknown_kept_id_names_the_recent_ones(ws, tmp_path):
    kid = kept_id(ws, tmp_path)
    done = cli("correct", "t999", "--text", "x", "-w", str(ws.root))
    assert done.exit_code == 1 and kid in done.output


def test_report_lists_which_corrections_the_new_adapter_gets_right(ws, tmp_path, tiny_model):
    """The real `vocabd evaluate` subprocess on the corrected clips with the run's best adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import MoonshineForConditionalGeneration

    from vocabd.corrections.report import add_to_report

    kid = kept_id(ws, tmp_path)
    cli("correct", kid, "--text", "restart kubectl on the PBX", "-w", str(ws.root))
    torch.manual_seed(0)
    net = MoonshineForConditionalGeneration.from_pretrained(tiny_model)
    run_dir = ws.runs / "adapt-1"
    get_peft_model(net, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(run_dir / "best")
    report = run_dir / "report.md"
    report.write_text("# report\n")
    [checked] = add_to_report(ws, run_dir, report)
    assert checked["id"] == kid and checked["right"] is False and checked["correction"] == "restart kubectl on the PBX"
    text = report.read_text()
    assert "## Your corrections" in text and "gets 0 of 1 corrected transcripts right" in text
    assert json.loads((run_dir / "corrections.json").read_text())[0]["id"] == kid


def test_a_fixed_txt_dropped_into_the_inbox_corrects_the_kept_transcript(ws, tmp_path):
    from vocabd.inbox.drops import handle, inbox_entries

    kid = kept_id(ws, tmp_path)
    (ws.inbox / f"{kid}.txt").write_text("restart kubectl on the PBX\n")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done" and outcome.drop.kind == "correction", outcome.message
    assert (ws.inbox / "done" / f"{kid}.txt").is_file()
    [outcome] = handle(ws, inbox_entries(ws))  # the pair it left in the inbox: a recording
    assert outcome.drop.kind == "recording" and outcome.status == "done"
    (ws.inbox / "t999-abcdef.txt").write_text("no such transcript\n")
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "rejected" and "no kept transcript 't999-abcdef'" in outcome.message
