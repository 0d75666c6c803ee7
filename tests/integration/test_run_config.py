"""One path for a run's settings: vocabd.toml + flags -> RunConfig (once, in the launcher) -> config.json -> trainer."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from tiny import speech_wav
from vocabd.errors import VocabdError
from vocabd.manifest import ManifestError
from vocabd.training.config import RunConfig
from vocabd.training.data import prepare_data
from vocabd.training.launch import prepare_new_run, spawn_trainer
from vocabd.training.options import build_run_config
from vocabd.training.run_folder import RunFolder
from vocabd.training.status import read_status
from vocabd.workspace import init_workspace, open_workspace

# a value unlike its default for every run setting that vocabd.toml holds
NON_DEFAULT = {
    "model.base": "some/model", "model.offline_fallback": False, "data.allow_outside": True,
    "full.max_steps": 77, "full.eval_interval": 7, "train.lr": 0.003, "train.lora_r": 4, "train.lora_alpha": 9,
    "train.lora_dropout": 0.2, "train.use_dora": False, "train.targets": "decoder", "train.batch_size": 3,
    "train.warmup_steps": 5, "train.weight_decay": 0.01, "train.seed": 11, "train.dev_fraction": 0.2,
    "train.dev_max_clips": 6, "train.replay_dev_clips": 3, "train.replay_weight": 0.5,
    "train.replay": "data/replay.jsonl", "train.replay_ratio": 0.4, "train.kl_weight": 0.3, "train.augment": 0.25,
    "train.pause_on_battery": False, "train.pause_when_busy": True, "train.max_epochs": 3.5,
}


def toml_text(values: dict) -> str:
    sections: dict[str, list[str]] = {}
    for key, value in values.items():
        section, name = key.split(".")
        shown = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
        sections.setdefault(section, []).append(f"{name} = {shown}")
    return "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())


@pytest.fixture()
def ws(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    for name in ("train", "replay"):
        ws.manifest(name).write_text('{"audio": "a.wav", "text": "a"}\n')
    return ws


def test_every_run_setting_comes_from_vocabd_toml(ws):
    ws.config_file.write_text(toml_text(NON_DEFAULT))
    config = build_run_config(open_workspace(ws.root), "r", ws.manifest("train"), {})
    from_toml = {f.metadata["setting"]: getattr(config, f.name) for f in dataclasses.fields(RunConfig)
                 if "setting" in f.metadata}
    expected = {**NON_DEFAULT, "train.replay": str(ws.manifest("replay"))}
    assert from_toml == expected
    # the rest are the run's own: its name, its manifests and the workspace it belongs to
    assert {f.name for f in dataclasses.fields(RunConfig) if "setting" not in f.metadata} == {
        "name", "train", "dev", "workspace"}
    assert config.workspace == str(ws.root)


def test_flags_win_over_the_toml_and_replay_ratio_needs_a_replay_pool(ws, tmp_path):
    ws.config_file.write_text("[train]\nlr = 0.002\nreplay_ratio = 0.4\n")
    ws = open_workspace(ws.root)
    config = build_run_config(ws, "r", ws.manifest("train"), {"lr": 0.005, "seed": None, "targets": "encoder"})
    assert (config.lr, config.seed, config.targets, config.replay, config.replay_ratio) == (0.005, 0, "encoder", "", 0.0)
    flagged = build_run_config(ws, "r", ws.manifest("train"), {"replay": ws.manifest("replay")})
    assert (flagged.replay, flagged.replay_ratio) == (str(ws.manifest("replay")), 0.4)
    with pytest.raises(VocabdError, match="replay ratio needs"):
        build_run_config(ws, "r", ws.manifest("train"), {"replay_ratio": 0.5})


def test_missing_toml_replay_names_the_setting(ws):
    ws.config_file.write_text('[train]\nreplay = "nowhere.jsonl"\n')
    with pytest.raises(VocabdError, match=r"train\.replay in .*vocabd\.toml"):
        build_run_config(open_workspace(ws.root), "r", ws.manifest("train"), {})


def test_auto_targets_follow_the_training_clips(ws):
    """`[train] targets = "auto"`: the encoder's upper half with the user's recordings, every layer without."""
    synthetic = '{"audio": "s.wav", "text": "a", "source": "synthetic"}\n'
    real = '{"audio": "r.wav", "text": "b"}\n'  # a row without a source is a recording
    ws.manifest("train").write_text(synthetic * 3)
    assert build_run_config(ws, "r", ws.manifest("train"), {}).targets == "all"
    ws.manifest("train").write_text(synthetic * 3 + real)
    assert build_run_config(ws, "r", ws.manifest("train"), {}).targets == "upper"
    assert build_run_config(ws, "r", ws.manifest("train"), {"targets": "decoder"}).targets == "decoder"
    with pytest.raises(VocabdError, match="'auto' is not an adapter placement"):
        RunConfig(name="r", train="t", targets="auto").validate()


def test_allow_outside_from_the_toml_reaches_the_trainer(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    inside = speech_wav(ws.inbox / "done" / "in.wav", "inside the workspace")
    outside = speech_wav(tmp_path / "elsewhere" / "out.wav", "outside the workspace")
    rows = [{"audio": str(p), "text": t} for p, t in ((inside, "in"), (outside, "out"))] * 3
    ws.manifest("mixed_train").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = build_run_config(ws, "r", ws.manifest("mixed_train"), {"dev_max_clips": 1})
    assert config.allow_outside is False
    with pytest.raises(ManifestError, match="out.wav: path leaves"):
        prepare_data(config)
    ws.config_file.write_text("[data]\nallow_outside = true\n")
    config = build_run_config(open_workspace(ws.root), "r", ws.manifest("mixed_train"), {"dev_max_clips": 1})
    data = prepare_data(config)
    assert len(data.train) + len(data.dev) == 6  # inbox/done/ (outside data/) was never the problem


def test_trainer_reads_only_config_json(tmp_path, tiny_model):
    """The toml is broken after the launcher built the config: the trainer still trains, from config.json."""
    ws = init_workspace(tmp_path / "ws")
    rows = [json.dumps({"audio": str(speech_wav(ws.data / f"c{i}.wav", t)), "text": t})
            for i, t in enumerate(["hello there", "press one", "voice mail", "good morning", "goodbye"])]
    ws.manifest("train").write_text("\n".join(rows) + "\n")
    ws.config_file.write_text(f'[model]\nbase = "{tiny_model}"\n[train]\nbatch_size = 2\nlora_r = 4\n')
    config = build_run_config(open_workspace(ws.root), "r", ws.manifest("train"),
                              {"max_steps": 2, "eval_interval": 2})
    folder = RunFolder(ws.run_dir("r"))
    prepare_new_run(folder, config)
    assert RunConfig.from_file(folder.config_file) == config  # written before the trainer exists
    ws.config_file.write_text("[train\nthis is not toml")
    spawn_trainer(folder)
    deadline = time.time() + 120
    while time.time() < deadline and read_status(folder.root).state == "running":
        time.sleep(0.2)
    assert read_status(folder.root).state == "finished", folder.stdout_log.read_text()[-2000:]
    adapter = json.loads((folder.best / "adapter_config.json").read_text())
    assert adapter["r"] == 4


def test_offline_fallback_false_reaches_the_trainer(tmp_path, monkeypatch):
    """`[model] offline_fallback = false`: an unreachable hub model fails the run instead of building the offline one."""
    from vocabd.training.loop import run_experiment

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ws = init_workspace(tmp_path / "ws")
    ws.manifest("train").write_text('{"audio": "a.wav", "text": "a"}\n')
    ws.config_file.write_text('[model]\nbase = "nobody/no-such-model"\noffline_fallback = false\n')
    config = build_run_config(open_workspace(ws.root), "r", ws.manifest("train"), {})
    with pytest.raises(VocabdError, match="cannot get nobody/no-such-model from the Hugging Face Hub"):
        run_experiment(RunFolder(ws.run_dir("r")), config, progress=False)
    assert "Hugging Face Hub" in read_status(ws.run_dir("r")).error
    assert not Path(ws.run_dir("r") / "adapters").exists()
