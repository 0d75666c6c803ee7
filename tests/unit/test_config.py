import dataclasses
import json
import tomllib

import numpy as np
import pytest

from vocabd import config as config_module
from vocabd.config import (SYNTHESIS_BACKENDS, TARGET_NAMES, Config, PhaseConfig, TrainConfig, limit_of, load_config,
                           render_config)
from vocabd.errors import ConfigError, WorkspaceError
from vocabd.workspace import ENV_VAR, find_workspace, init_workspace, open_workspace

KEYS = [f"{table.name}.{setting.name}" for table in dataclasses.fields(Config)
        for setting in dataclasses.fields(table.default_factory())]


def test_defaults_follow_the_plan():
    c = Config()
    assert (c.mini.clips, c.mini.max_steps) == (5, 50)
    assert (c.full.clips, c.full.max_steps, c.full.eval_interval) == (500, 1000, 200)
    t = c.train
    assert (t.lr, t.lora_r, t.lora_alpha, t.lora_dropout, t.use_dora) == (1e-4, 32, 64, 0.0, True)


def default_of(key):
    section, name = key.split(".")
    return getattr(getattr(Config(), section), name)


def other_value(key):
    """An allowed value of setting `key` unlike its default."""
    value, limit = default_of(key), limit_of(key)
    if isinstance(value, bool):
        return not value
    if limit is not None and limit.choices:
        return next(choice for choice in limit.choices if choice != value)
    if isinstance(value, str):
        return value + "x"
    candidates = [value + 1, value - 1] if isinstance(value, int) else [value + 1, value - 1, value / 2,
                                                                         (value + limit.high) / 2]
    return next(c for c in candidates if c != value and (limit is None or limit.problem(c) is None))


def setting_lines(text):
    """`section.key` -> the line of each setting under its section's header, commented out or not."""
    found, section = {}, None
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section and " = " in line:
            found.setdefault(f"{section}.{line.removeprefix('# ').split(' = ')[0]}", []).append(line)
    return found


def uncomment(text, key, value):
    """`text` with the commented-out line of setting `key`, under its section's header, made `key = value`."""
    section, name = key.split(".")
    lines, current = text.splitlines(), None
    for i, line in enumerate(lines):
        current = line.strip("[]") if line.startswith("[") else current
        if current == section and line.startswith(f"# {name} = "):
            lines[i] = f"{name} = {json.dumps(value)}"
            return "\n".join(lines) + "\n"
    raise AssertionError(f"no commented-out {key} in\n{text}")


def test_init_writes_every_setting_commented_out_and_reads_back_as_the_defaults(tmp_path):
    ws = init_workspace(tmp_path)
    text = ws.config_file.read_text()
    assert text == render_config()
    assert tomllib.loads(text) == {table.name: {} for table in dataclasses.fields(Config)}  # headers, nothing set
    assert ws.config == load_config(ws.config_file) == Config()
    lines = setting_lines(text)
    assert sorted(lines) == sorted(KEYS)
    for key in KEYS:  # each setting once, commented out, with its default, the values it allows, what it is for
        section, name = key.split(".")
        [line] = lines[key]
        assert line.startswith(f"# {name} = {json.dumps(default_of(key))}"), line
        field = next(f for f in dataclasses.fields(getattr(Config(), section)) if f.name == name)
        for note in (str(limit_of(key) or ""), field.metadata.get("help", "")):
            assert note in line, (key, note, line)
    assert lines["train.lr"] == ["# lr = 0.0001              # (0, 0.1]"]
    assert "# auto | all | upper | attention | decoder | encoder; which projections adapt" in lines["train.targets"][0]
    assert "# [0, 1); 0: the fused DoRA forward (> 0 takes PEFT's slower path)" in lines["train.lora_dropout"][0]


@pytest.mark.parametrize("key", KEYS)
def test_uncommenting_one_line_changes_exactly_that_setting(tmp_path, key):
    ws = init_workspace(tmp_path)
    value = other_value(key)
    ws.config_file.write_text(uncomment(ws.config_file.read_text(), key, value))
    section, name = key.split(".")
    expected = dataclasses.replace(Config(), **{section: dataclasses.replace(getattr(Config(), section),
                                                                             **{name: value})})
    assert open_workspace(ws.root).config == expected


def test_a_workspace_follows_a_default_changed_after_it_was_made(tmp_path, monkeypatch):
    ws = init_workspace(tmp_path)
    ws.config_file.write_text(uncomment(ws.config_file.read_text(), "train.lora_r", 8))  # the user's one change

    @dataclasses.dataclass
    class LaterConfig(Config):  # the code's defaults in a later version
        train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(lr=3e-4, lora_r=64))
        full: PhaseConfig = dataclasses.field(default_factory=lambda: PhaseConfig(clips=800, max_steps=2000))

    monkeypatch.setattr(config_module, "Config", LaterConfig)
    config = open_workspace(ws.root).config
    assert (config.train.lr, config.full.clips, config.full.max_steps) == (3e-4, 800, 2000)
    assert config.train.lora_r == 8 and config.mini == PhaseConfig()


def test_override_and_int_for_float(tmp_path):
    path = tmp_path / "vocabd.toml"
    path.write_text("[mix]\nsynthetic_ratio = 1\n[train]\nlora_r = 8\n[full]\nmax_steps = 200\n")
    c = load_config(path)
    assert c.mix.synthetic_ratio == 1.0 and c.train.lora_r == 8 and c.full.max_steps == 200 and c.full.clips == 500


@pytest.mark.parametrize("text, key", [
    ("[train]\nlora_rank = 8\n", "train.lora_rank"),
    ("[train]\nlora_r = 'big'\n", "train.lora_r"),
    ("[train]\nuse_dora = 1\n", "train.use_dora"),
    ("[trian]\nlr = 1\n", "trian"),
    ("train = 3\n", "train"),
])
def test_errors_name_key_and_file(tmp_path, text, key):
    path = tmp_path / "vocabd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.key == key and str(path) in str(e.value)


def test_broken_toml_names_file(tmp_path):
    path = tmp_path / "vocabd.toml"
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_workspace_discovery_order(tmp_path, monkeypatch):
    a, b, c = (init_workspace(tmp_path / n) for n in "abc")
    assert all((w.root / d).is_dir() for w in (a, b, c) for d in ("inbox", "data", "runs"))
    monkeypatch.setenv(ENV_VAR, str(b.root))
    monkeypatch.chdir(c.root)
    assert find_workspace(a.root).root == a.root
    assert find_workspace().root == b.root
    monkeypatch.delenv(ENV_VAR)
    assert find_workspace().root == c.root
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with pytest.raises(WorkspaceError, match="vocabd init"):
        find_workspace()


def test_init_keeps_existing_config(tmp_path):
    ws = init_workspace(tmp_path)
    ws.config_file.write_text("[train]\nlora_r = 4\n")
    assert init_workspace(tmp_path).config.train.lora_r == 4


@pytest.mark.parametrize("text, key, allowed", [
    ("[train]\nlr = 1e9\n", "train.lr", "(0, 0.1]"),
    ("[train]\nlr = nan\n", "train.lr", "finite number in (0, 0.1]"),
    ("[train]\nlr = inf\n", "train.lr", "finite number in (0, 0.1]"),
    ("[train]\nlr = 0\n", "train.lr", "(0, 0.1]"),
    ("[train]\nbatch_size = 0\n", "train.batch_size", "[1, 1024]"),
    ("[full]\nmax_steps = 0\n", "full.max_steps", "[1, 10000000]"),
    ("[mini]\neval_interval = 0\n", "mini.eval_interval", "[1, 10000000]"),
    ("[mini]\nclips = 0\n", "mini.clips", "[1, 1000000]"),
    ("[full]\nclips = -5\n", "full.clips", "[1, 1000000]"),
    ("[mix]\nsynthetic_ratio = 1.5\n", "mix.synthetic_ratio", "[0, 1]"),
    ("[train]\nreplay_ratio = 1\n", "train.replay_ratio", "[0, 1)"),
    ("[gate]\nsafety_margin = -0.1\n", "gate.safety_margin", "[0, 1]"),
    ("[train]\nlora_dropout = 1.5\n", "train.lora_dropout", "[0, 1)"),
    ("[train]\ndev_fraction = 0\n", "train.dev_fraction", "(0, 0.5]"),
    ("[synthesis]\nbackend = 'festival'\n", "synthesis.backend", "auto, f5_mlx, piper, espeak"),
    ("[train]\ntargets = 'everything'\n", "train.targets", "auto, all, upper, attention, decoder, encoder"),
])
def test_values_that_cannot_work_are_refused_when_the_file_is_read(tmp_path, text, key, allowed):
    path = tmp_path / "vocabd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.key == key and str(path) in str(e.value) and f"[{key}]" in str(e.value)
    assert allowed in str(e.value), str(e.value)


def test_the_edges_of_each_range_are_allowed(tmp_path):
    path = tmp_path / "vocabd.toml"
    path.write_text("[train]\nlr = 0.1\nlora_dropout = 0\nreplay_ratio = 0\n[mix]\nsynthetic_ratio = 1\n"
                    "[mini]\nclips = 1\nmax_steps = 1\neval_interval = 1\n[synthesis]\nbackend = 'espeak'\n")
    c = load_config(path)
    assert (c.train.lr, c.mix.synthetic_ratio, c.mini.clips, c.synthesis.backend) == (0.1, 1.0, 1, "espeak")


def test_every_number_setting_has_a_range_and_the_choices_match_the_code():
    from vocabd.training.config import TARGETS
    from vocabd.tts import BACKENDS

    for table in dataclasses.fields(Config):
        for setting in dataclasses.fields(table.default_factory()):
            if setting.type in ("int", "float"):
                assert limit_of(f"{table.name}.{setting.name}") is not None, f"{table.name}.{setting.name}"
    assert tuple(TARGETS) == TARGET_NAMES and tuple(BACKENDS) == SYNTHESIS_BACKENDS


def test_a_bad_value_stops_the_chain_before_any_stage_runs(tmp_path):
    from click.testing import CliRunner

    from vocabd.cli import main

    ws = init_workspace(tmp_path / "ws")
    (ws.inbox / "terms.txt").write_text("kubectl\n")
    ws.config_file.write_text("[train]\nlr = 0\n")
    result = CliRunner().invoke(main, ["run", "--foreground", "-w", str(ws.root)])
    assert result.exit_code == 1
    assert f"{ws.config_file}: [train.lr] must be in (0, 0.1], got 0.0" in result.output
    assert sorted(p.name for p in ws.data.iterdir()) == []  # nothing synthesized, nothing ingested


def test_a_flag_is_held_to_the_same_range_as_the_file(tmp_path):
    from vocabd.errors import VocabdError
    from vocabd.training.options import build_run_config

    ws = init_workspace(tmp_path / "ws")
    ws.manifest("train").write_text('{"audio": "a.wav", "text": "a"}\n')
    with pytest.raises(VocabdError, match=r"lr must be in \(0, 0.1\], got 5.0; batch_size must be in \[1, 1024\]"):
        build_run_config(ws, "r", ws.manifest("train"), {"lr": 5.0, "batch_size": 0})


def test_transcribe_refuses_a_workspace_whose_settings_are_broken(tmp_path):
    """A bad vocabd.toml is an error naming it, never a silent fall-back to the defaults (no jargon, no adapter)."""
    from click.testing import CliRunner

    from vocabd.audio import write_wav
    from vocabd.cli import main

    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text("[decode]\nbeams = 0\n")
    wav = tmp_path / "a.wav"
    write_wav(wav, np.zeros(16000, dtype="float32"))
    result = CliRunner().invoke(main, ["transcribe", str(wav), "-w", str(ws.root)])
    assert result.exit_code == 1
    assert f"{ws.config_file}: [decode.beams] must be in [1, 16], got 0" in result.output


@pytest.mark.parametrize("named_by", ["--workspace", "VOCABD_HOME"])
def test_transcribe_refuses_a_named_folder_that_is_not_a_workspace(tmp_path, monkeypatch, named_by):
    """`-w DIR` or $VOCABD_HOME names the settings to use: a folder without vocabd.toml is an error naming it,
    not the built-in defaults."""
    from click.testing import CliRunner

    from vocabd.audio import write_wav
    from vocabd.cli import main

    wav = tmp_path / "a.wav"
    write_wav(wav, np.zeros(16000, dtype="float32"))
    args = ["transcribe", str(wav)]
    if named_by == "VOCABD_HOME":
        monkeypatch.setenv("VOCABD_HOME", str(tmp_path))
    else:
        args += ["-w", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert f"{tmp_path} is not a vocabd workspace (no vocabd.toml)" in result.output
