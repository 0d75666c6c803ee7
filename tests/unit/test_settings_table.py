"""One declaration of the settings (`vocabd.config`): the `vocabd.toml` template, a run's settings (RunConfig),
the `run-experiment` flags and the docs list are all derived from it; every interval lives in one `Timing`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from test_config import other_value, setting_lines
from vocabd.cli import main
from vocabd.config import render_config, run_settings, settings
from vocabd.timing import Timing
from vocabd.training.config import BARE_DEFAULTS, RunConfig
from vocabd.training.options import build_run_config
from vocabd.workspace import init_workspace

RUN_EXPERIMENT = main.commands["run-experiment"]
OWN_PARAMS = {"name", "train", "dev", "resume", "background", "workspace"}  # the run's own, not settings


def test_every_setting_has_one_template_line_with_its_default():
    lines = setting_lines(render_config())
    assert sorted(lines) == sorted(s.key for s in settings())
    for s in settings():
        [line] = lines[s.key]
        assert line.startswith(f"# {s.name} = "), line


def test_run_config_is_made_of_the_run_settings():
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    assert set(fields) - OWN_PARAMS == {s.run for s in run_settings()}
    for s in run_settings():
        field = fields[s.run]
        assert field.metadata["setting"] == s.key
        assert field.default == BARE_DEFAULTS.get(s.run, s.default), s.key
    assert len({s.run for s in run_settings()}) == len(run_settings())  # no two settings share a run name
    assert {s.key for s in run_settings()} >= {"full.max_steps", "train.lr", "model.base"}
    assert not {s.key for s in run_settings()} & {"mini.max_steps", "mini.eval_interval"}  # the chain sets phase 1's


def test_every_run_setting_has_its_flag_and_every_flag_is_a_setting_or_the_runs_own():
    options = {p.name: p for p in RUN_EXPERIMENT.params}
    assert set(options) == {s.run for s in run_settings()} | OWN_PARAMS
    for s in run_settings():
        option = options[s.run]
        declared = {d for decl in s.flag for d in decl.split("/")}
        assert set(option.opts) | set(option.secondary_opts) == declared, s.key
        assert option.default is None  # unset, vocabd.toml decides
    for name in ("--max-steps", "--lr", "--lora-r", "--use-dora", "--no-dora", "--targets", "--replay-ratio",
                 "--kl-weight", "--model", "-m"):  # names that scripts already use
        assert any(name in p.opts + p.secondary_opts for p in RUN_EXPERIMENT.params), name


def flag_args(s, value, replay: Path) -> list[str]:
    """The `run-experiment` arguments that set run setting `s` to `value`."""
    if isinstance(value, bool):
        on, _, off = s.flag[0].partition("/")
        return [on if value else off]
    return [s.flag[0], str(replay if s.path else value)]


def test_each_flag_sets_its_setting_in_the_run(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    for name in ("train", "replay"):
        ws.manifest(name).write_text('{"audio": "a.wav", "text": "a"}\n')
    wanted = {s.run: other_value(s.key) for s in run_settings()}
    wanted["replay"] = str(ws.manifest("replay"))
    wanted["targets"] = "decoder"  # "auto" is resolved from the clips, not kept
    args = ["r", "--train", str(ws.manifest("train"))]
    for s in run_settings():
        args += flag_args(s, wanted[s.run], ws.manifest("replay"))
    ctx = RUN_EXPERIMENT.make_context("run-experiment", args)
    flags = {k: v for k, v in ctx.params.items() if k not in OWN_PARAMS - {"dev"}}
    config = build_run_config(ws, "r", ws.manifest("train"), flags)
    assert {s.run: getattr(config, s.run) for s in run_settings()} == wanted


def test_every_interval_is_read_from_its_variable(monkeypatch):
    fields = dataclasses.fields(Timing)
    for i, f in enumerate(fields):
        monkeypatch.setenv(f.metadata["env"], str(1.25 + i))
    assert Timing.from_env() == Timing(**{f.name: 1.25 + i for i, f in enumerate(fields)})
    monkeypatch.setenv("VOCABD_TICK_S", "0")
    assert Timing.from_env().tick == 0.05  # the least a busy loop may sleep


@pytest.mark.parametrize("raw, problem", [("soon", "must be a number of seconds"), ("-1", "must not be negative")])
def test_a_bad_interval_names_its_variable(monkeypatch, raw, problem):
    from vocabd.errors import VocabdError

    monkeypatch.setenv("VOCABD_POLL_SECONDS", raw)
    with pytest.raises(VocabdError, match=rf"\$VOCABD_POLL_SECONDS {problem}"):
        Timing.from_env()


def test_no_interval_is_read_outside_timing():
    """Every `VOCABD_*` interval variable that vocabd names is declared in `Timing`, and read nowhere else."""
    declared = {f.metadata["env"] for f in dataclasses.fields(Timing)}
    package = Path(__file__).resolve().parents[2] / "vocabd"
    for path in package.rglob("*.py"):
        named = set(re.findall(r"VOCABD_[A-Z_]+?_(?:S|SECONDS)\b", path.read_text(encoding="utf-8")))
        if path.name != "timing.py":
            assert not named - declared, path  # an interval nobody declared
            for line in path.read_text(encoding="utf-8").splitlines():
                assert not (set(re.findall(r"VOCABD_[A-Z_]+", line)) & declared and "environ" in line), (path, line)
