"""The job chain: gate, report, FAILED.md, and a jargon list driving the whole chain with a tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tiny import tiny_workspace_config
from vocabd.chain import record as state
from vocabd.chain import stages as pipeline
from vocabd.chain.gate import decide_from_results
from vocabd.chain.stages import PIPELINE
from vocabd.chain.status import chain_state
from vocabd.evaluation.evaluate import score_transcripts
from vocabd.evaluation.runner import RunEvaluation, SetPair
from vocabd.report import build_report, render_markdown, write_report
from vocabd.workspace import init_workspace
from vocabd.training.status import load_status

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# report --------------------------------------------------------------------------------------------

def _result(hyps: list[str], refs: list[str]):
    return score_transcripts(refs, hyps, ["kubectl"], audio=[f"/a/{i}.wav" for i in range(len(refs))])


def _results() -> RunEvaluation:
    refs = ["run kubectl get pods", "mail ops@acme.io today", "the sun is warm"]
    general = ["the sun is warm today", "we walk to the shop"]
    return RunEvaluation(
        primary=SetPair("data/synthetic_eval.jsonl", "synthetic",
                        _result(["run cube cuddle get pods", "mail ops at acme dot io today", "the sun is warm"], refs),
                        _result(["run kubectl get pods", "mail ops@acme.io today", "the sun is warm"], refs)),
        safety=SetPair("data/safety_eval.jsonl", "general speech", _result(general, general),
                       _result(["the sun is warm to day", "we walk to the shop"], general)))


def test_report_files_and_contents(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    (ws.data / "jargon.txt").write_text("kubectl\n")
    run_dir = ws.run_dir("adapt-x")
    run_dir.mkdir(parents=True)
    events = [{"event": "eval", "step": s, "dev_wer": w, "replay_dev_wer": 0.1} for s, w in ((0, 0.5), (2, 0.3))]
    (run_dir / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    results = _results()
    gate = decide_from_results(results, ws.config.gate)
    report = build_report(ws, "adapt-x", "full", results, gate, {})
    md = write_report(ws, report)

    assert (run_dir / "wer.png").read_bytes()[:8] == PNG_MAGIC
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["gate"]["promote"] is False  # safety rose from 0 (two errors in nine words), beyond 0.005
    assert [p["step"] for p in saved["training"]["curve"]] == [0, 2]
    text = md.read_text()
    assert "NOT PROMOTED" in text and "safety WER rose" in text
    assert "No real recordings were available" in text and "Synthetic speech was made with: none." in text
    assert "| mail ops@acme.io today | mail ops at acme dot io today | mail ops@acme.io today |" in text
    assert "the sun is warm |" not in text  # no jargon, no symbol: not in the side-by-side table
    assert "`kubectl` | 1 | 0.00 | 1.00 |" in text
    primary = saved["table"][0]
    assert primary["words"] == 12 and primary["change"]["clips"] == 3  # base and adapter on the same 3 clips
    assert primary["change"]["change"] < 0 and primary["base_interval"][0] <= primary["base_interval"][1]
    assert "95% bootstrap interval" in text and "[" in text.split("| primary")[1].split("\n")[0]


def test_side_by_side_picks_whole_jargon_words_and_symbols():
    from vocabd.report import interesting

    assert interesting("our WER is down", ["WER"]) and interesting("run Kubectl now", ["kubectl"])
    assert interesting("write to ops@acme.io", []) and interesting("see docs/a_b", [])
    assert not interesting("the hogs were fed", ["WER"])  # "were" holds "wer" but is not the term


def test_markdown_escapes_pipes():
    report = {"experiment": "e", "phase": "mini", "created": "now", "model": "m", "adapter": "a", "notes": [],
              "gate": None, "table": [], "terms": [], "timings": {},
              "transcripts": {"primary": [{"ref": "kubectl", "base": "a | b", "adapter": "kubectl"}]},
              "data": {"real_train_clips": 0, "real_eval_clips": 0, "synthetic_clips": 0, "synthesis_voices": [],
                       "voice_cloned": False, "mixed_clips": 0, "mixed_sources": {}, "replay": None,
                       "replay_ratio": 0.0},
              "training": {"config": {}, "steps_done": 1, "seconds_per_step": None, "best_step": 1,
                           "best_dev_wer": None}}
    assert "a \\| b" in render_markdown(report)


# chain bookkeeping ---------------------------------------------------------------------------------

def test_start_chain_needs_material(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    with pytest.raises(pipeline.VocabdError, match="nothing to train on"):
        pipeline.start_chain(ws)


def test_new_chain_supersedes_the_old_one(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    (ws.data / "jargon.txt").write_text("kubectl\n")
    first, phase, stage = pipeline.start_chain(ws)
    assert (phase, stage) == ("mini", "synthesize")
    assert chain_state(ws)["resume"] == [first, "mini", "synthesize"]
    second, _, _ = pipeline.start_chain(ws)
    assert second != first
    # a stale task of the old chain does nothing and enqueues nothing
    assert pipeline.run_stage(ws, first, "mini", "synthesize") == pipeline.StageOutcome(None)
    assert chain_state(ws)["name"] == second


def test_pipeline_is_torch_free():
    code = ("import sys, vocabd.chain.stages, vocabd.chain.foreground, vocabd.report, vocabd.training.phase, "
            "vocabd.training.watch, vocabd.evaluation.runner; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# the chain with a tiny model -------------------------------------------------------------------------

@pytest.fixture
def tiny_ws(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("VOCABD_POLL_SECONDS", "0.3")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "vocabd.toml").write_text(tiny_workspace_config(tiny_model))
    return init_workspace(root)


def _ingest(ws) -> None:
    from vocabd.inbox.drops import handle, inbox_entries

    outcomes = handle(ws, inbox_entries(ws))
    assert [o.status for o in outcomes] == ["done"] * len(outcomes)


def test_restarted_train_stage_and_killed_training_are_recovered(tiny_ws):
    """Phase 1 driven task by task (as the daemon's queue does): a re-run train stage finds the live run;
    a kill -9 is resumed."""
    from vocabd.chain.driver import run_task

    ws = tiny_ws
    (ws.data / "jargon.txt").write_text("kubectl | cube control\nops@acme.io\n")
    name, phase, stage = pipeline.start_chain(ws)
    token = state.set_queued(ws, name, phase, stage)
    stages = []
    while state.current(ws).phase == "mini":
        stage = state.current(ws).stage
        task = run_task(ws, PIPELINE, token, retry_first=0.1)
        stages.append(stage)
        if stage == "train":
            pid = state.current(ws).train_pid
            # a daemon restarted mid-stage runs it again: the live run is found, not launched twice
            assert pipeline.run_stage(ws, name, phase, "train").next_stage == "poll"
            assert state.current(ws).train_pid == pid
            os.kill(pid, signal.SIGKILL)  # poll finds the run dead and starts it again
        time.sleep(task.delay)
        token = task.token

    assert [s for s in stages if s != "poll"] == ["synthesize", "mix", "train", "evaluate"]
    chain = state.current(ws)
    assert (chain.phase, chain.stage) == ("full", "synthesize")  # phase 1 passed: phase 2 is next, no human step
    assert chain.resumes == {"mini": 1} and chain.state == "queued"
    assert chain.train_pid == load_status(ws.run_dir(f"{name}_mini")).pid != pid  # the resume's pid is recorded
    assert chain.results["mini"].mix.rows > 0 and chain.results["mini"].synthesize.clips > 0  # typed results
    assert chain_state(ws)["resume"] == [name, "full", "synthesize"]
    assert (ws.run_dir(f"{name}_mini") / "report.md").is_file()


def test_jargon_file_dropped_into_the_inbox_drives_the_daemon_to_a_report(tiny_ws, tiny_model):
    """The real daemon (watchdog + Huey consumer) running the real pipeline with a tiny model."""
    from vocabd.asr.identity import weights_hash

    ws = tiny_ws
    env = {**os.environ, "VOCABD_DEBOUNCE_S": "0.3", "VOCABD_SETTLE_S": "0.3", "VOCABD_TICK_S": "0.1",
           "VOCABD_POLL_SECONDS": "0.3", "VOCABD_LOG_CONSOLE": "0"}
    env.pop("VOCABD_HOME", None)
    daemon = subprocess.Popen([sys.executable, "-m", "vocabd", "start", "--foreground", "-w", str(ws.root)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        part = ws.inbox / ".terms.txt.part"
        part.write_text("kubectl | cube control\nops@acme.io\nWER | W E R\n")
        part.rename(ws.inbox / "terms.txt")
        deadline = time.monotonic() + 240
        while chain_state(ws)["state"] not in ("done", "failed") and time.monotonic() < deadline:
            assert daemon.poll() is None, "the daemon exited"
            time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=30)

    final = chain_state(ws)
    assert final["state"] == "done", final
    name = final["name"]
    assert (ws.inbox / "done" / "terms.txt").is_file()
    for experiment in (f"{name}_mini", name):
        run_dir = ws.run_dir(experiment)
        assert (run_dir / "wer.png").read_bytes()[:8] == PNG_MAGIC
        report = json.loads((run_dir / "report.json").read_text())
        assert report["table"][0]["kind"] == "synthetic"  # held-out synthetic clips in an unused voice
        assert set(report["data"]["heldout_voices"]).isdisjoint(report["data"]["synthesis_voices"])
        assert "No real recordings were available" in (run_dir / "report.md").read_text()
        # the base really loaded, by the hash of its weights, is named in the report
        assert report["base_model"]["sha256"] == weights_hash(tiny_model)
        assert report["model"] == str(tiny_model.resolve()) and "local folder" in (run_dir / "report.md").read_text()
    full = json.loads((ws.run_dir(name) / "report.json").read_text())
    assert full["gate"] is not None and set(full["timings"]) == {"mini", "full"}
    # nothing configured, yet general speech protected and measured: the default pool's replay and yardstick
    assert full["data"]["replay"] and "synthetic" in full["data"]["general_pool"]
    assert [r["set"] for r in full["table"]] == ["primary", "safety", "safety_real"] and not full["gate"]["blind"]
    assert json.loads((ws.run_dir(name) / "config.json").read_text())["replay"] == full["data"]["replay"]
    assert (ws.data / "active.json").exists() == full["gate"]["promote"]
    if full["gate"]["promote"]:
        assert json.loads((ws.data / "active.json").read_text())["base_model"] == full["base_model"]
    assert final["resume"] is None and final["last_report"] == str(ws.run_dir(name) / "report.md")


def test_phase1_failure_writes_failed_md_and_stops(tiny_ws):
    from vocabd.chain.foreground import run_foreground

    ws = tiny_ws
    (ws.data / "jargon.txt").write_bytes(bytes(range(256)) * 4)  # a corrupt list reached data/
    final = run_foreground(ws, retry_delay=0.1)

    assert final["state"] == "failed" and final["resume"] is None
    failed = ws.run_dir(f"{final['name']}_mini") / "FAILED.md"
    assert final["failed"] == str(failed)
    text = failed.read_text()
    assert "stage `synthesize`" in text and "jargon.txt" in text and "## What to do" in text
    assert not ws.run_dir(final["name"]).exists()  # phase 2 never started
    # a stale task for the next stage does nothing and enqueues nothing
    assert pipeline.run_stage(ws, final["name"], "mini", "mix") == pipeline.StageOutcome(None)


def test_demo_workspace_is_built_from_the_repo_and_says_what_it_is(tmp_path):
    from vocabd.inbox.drops import handle, inbox_entries
    from vocabd.demo import create_demo
    from vocabd.manifest import load_manifest

    ws = create_demo(tmp_path / "demo")
    assert ws.config.model.base == "moonshine-cpp" and ws.config.full.max_steps <= 150
    assert "No person was recorded" in (ws.root / "DEMO.md").read_text()
    outcomes = handle(ws, inbox_entries(ws))  # the inbox rules take the drops in, as the daemon would
    assert {o.status for o in outcomes} == {"done"} and len(outcomes) == 51  # jargon list + 50 recordings
    train, held_out = load_manifest(ws.manifest("my_voice_train")), load_manifest(ws.manifest("my_voice_eval"))
    assert len(train) + len(held_out) == 50 and held_out
    safety = load_manifest(ws.manifest("safety_eval"))
    assert any(c.id == "beckett" for c in safety)  # the real human clip from the moonshine-cpp wheel
    assert load_manifest(ws.manifest("replay"))
    with pytest.raises(pipeline.VocabdError, match="already holds a demo run"):
        pipeline.start_chain(ws)
        create_demo(ws.root)
