"""The base model really loaded is recorded wherever a model is named; an adapter sticks to its own base."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tiny import build_tiny_model, speech_wav
from vocabd.asr.identity import identify, read_identity, weights_hash
from vocabd.errors import VocabdError
from vocabd.training.config import RunConfig
from vocabd.training.run_folder import RunFolder
from vocabd.workspace import init_workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model):
    """A two-step run on the tiny model: its best/ adapter and the audio it was trained on."""
    from vocabd.training.loop import run_experiment

    ws = init_workspace(tmp_path_factory.mktemp("identity") / "ws")
    texts = ["hello there", "press one", "voice mail", "good morning", "goodbye"]
    rows = [json.dumps({"audio": str(speech_wav(ws.data / f"c{i}.wav", t)), "text": t}) for i, t in enumerate(texts)]
    ws.manifest("train").write_text("\n".join(rows) + "\n")
    config = RunConfig(name="r", train=str(ws.manifest("train")), model=str(tiny_model), max_steps=2,
                       eval_interval=2, batch_size=2, lora_r=4, workspace=str(ws.root))
    run_experiment(RunFolder(ws.run_dir("r")), config, progress=False)
    return ws.run_dir("r") / "best", ws.data / "c0.wav"


def test_every_record_names_the_base_by_its_weights(trained, tiny_model):
    best, _ = trained
    identity = identify(str(tiny_model), tiny_model)
    assert (identity.source, identity.name, identity.sha256) == ("folder", str(tiny_model.resolve()),
                                                                 weights_hash(tiny_model))
    assert read_identity(best) == identity
    info = json.loads((best / "best.json").read_text())
    assert info["model"] == identity.name and info["base_model"] == identity.to_dict()
    # PEFT's own loaders find the base from adapter_config.json: the very folder it was trained on
    assert json.loads((best / "adapter_config.json").read_text())["base_model_name_or_path"] == identity.path


def test_an_adapter_is_refused_on_another_base(trained, tiny_model, tmp_path):
    from vocabd.asr.model import load_asr
    from vocabd.cli import main

    best, audio = trained
    other = build_tiny_model(tmp_path / "other-tiny", seed=1)  # same shapes, other weights
    assert weights_hash(other) != weights_hash(tiny_model)
    assert load_asr(tiny_model, adapter=best).identity.sha256 == weights_hash(tiny_model)
    with pytest.raises(VocabdError, match="but the base loaded is"):
        load_asr(other, adapter=best)
    result = CliRunner().invoke(main, ["transcribe", str(audio), "--model", str(other), "--adapter", str(best)])
    assert result.exit_code == 1
    assert "this adapter was trained on base" in result.output and f"--model {tiny_model.resolve()}" in result.output


def test_resume_refuses_a_checkpoint_of_another_base(trained, tmp_path):
    from vocabd.training.loop import run_experiment

    best, _ = trained
    folder = RunFolder(best.parent)
    config = folder.read_config()
    other = build_tiny_model(tmp_path / "other-tiny", seed=2)
    config.model, config.max_steps = str(other), 4  # the base changed under the run
    with pytest.raises(VocabdError, match="this adapter was trained on base"):
        run_experiment(folder, config, resume=True, progress=False)


def test_the_offline_build_says_what_it_is(tiny_model):
    from vocabd.asr.offline import offline_model_dir

    if not (offline_model_dir() / "model.safetensors").is_file():
        pytest.skip("the offline base model is not built here (vocabd model fetch --source moonshine-cpp)")
    fell_back = identify("UsefulSensors/moonshine-tiny", offline_model_dir())
    assert (fell_back.source, fell_back.name, fell_back.requested) == (
        "moonshine-cpp", "moonshine-cpp", "UsefulSensors/moonshine-tiny")
    assert "offline build of moonshine-cpp 0.1.4" in fell_back.label() and fell_back.peft_base == fell_back.path


def test_the_evaluate_stage_loads_the_base_the_adapter_was_trained_on(trained, tiny_model, tmp_path):
    """`[model] base` changed after training: base and adapter are still measured on the adapter's own base."""
    from vocabd.evaluation.runner import evaluate_model
    from vocabd.workspace import open_workspace

    best, audio = trained
    ws = open_workspace(best.parents[2])
    other = build_tiny_model(tmp_path / "other-tiny", seed=3)
    ws.config_file.write_text(f'[model]\nbase = "{other}"\n')
    ws = open_workspace(ws.root)
    ws.manifest("eval").write_text(json.dumps({"audio": str(audio), "text": "hello there"}) + "\n")
    base = read_identity(best)
    assert evaluate_model(ws, ws.manifest("eval"), best).model == base.name  # not refused: the right base
    assert evaluate_model(ws, ws.manifest("eval"), base=base).model == base.name
    assert [p.name for p in ws.eval_cache.glob("base-eval-*.json")]  # cached under the base's weight hash


def test_a_cached_base_evaluation_is_made_again_when_the_scoring_code_changes(trained, tmp_path, monkeypatch):
    """An upgraded vocabd that transcribes or scores differently does not compare against the old figures."""
    import vocabd.evaluation.runner as stage
    from vocabd.workspace import open_workspace

    best, _ = trained
    ws = open_workspace(best.parents[2])
    ws.manifest("eval").write_text('{"audio": "a.wav", "text": "hello there"}\n')
    code = tmp_path / "code"
    (code / "asr").mkdir(parents=True)
    (code / "asr" / "transcribe.py").write_text("old = 1\n")
    monkeypatch.setattr(stage, "PACKAGE", code)
    before = stage._cache_file(ws, ws.manifest("eval"), read_identity(best))
    assert stage._cache_file(ws, ws.manifest("eval"), read_identity(best)) == before
    (code / "asr" / "transcribe.py").write_text("new = 1\n")
    assert stage._cache_file(ws, ws.manifest("eval"), read_identity(best)) != before
