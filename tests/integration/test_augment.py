"""Rooms and noise for synthesized training clips (training/augment.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vocabd.cli import main
from vocabd.training.augment import add_noise, augment_batch, coloured_noise, reverberate, room_response
from vocabd.training.data import Example, to_pcm
from vocabd.training.run_folder import RunFolder
from vocabd.workspace import init_workspace


def tone(seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def clip(source: str, id: str) -> Example:
    return Example(pcm=to_pcm(tone()), text="a tone", id=id, source=source)


def test_only_clips_that_are_not_the_users_recordings_are_changed():
    batch = [clip("real", "r1"), clip("synthetic", "s1"), clip("replay", "p1")]
    out = augment_batch(batch, 1.0, seed=0, step=0)
    assert out[0] is batch[0]
    assert all(not np.array_equal(a.pcm, b.pcm) for a, b in zip(out[1:], batch[1:]))
    assert [(e.text, e.id, e.source) for e in out] == [(e.text, e.id, e.source) for e in batch]
    assert augment_batch(batch, 0.0, seed=0, step=0) is batch


def test_a_draw_depends_on_seed_step_and_clip_alone():
    batch = [clip("synthetic", f"s{i}") for i in range(40)]
    first, again = augment_batch(batch, 0.5, 3, 7), augment_batch(batch, 0.5, 3, 7)
    assert all(np.array_equal(a.pcm, b.pcm) for a, b in zip(first, again))  # a resumed run hears the same
    changed = sum(a is not b for a, b in zip(first, batch))
    assert 8 <= changed <= 32  # about half
    later = augment_batch(batch, 0.5, 3, 8)
    assert any(not np.array_equal(a.pcm, b.pcm) for a, b in zip(first, later))


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
def test_noise_sits_at_the_asked_snr(snr_db):
    audio = tone(2.0, 0.1)
    noisy = add_noise(audio, snr_db, 1.0, np.random.default_rng(0))
    noise = noisy.astype(np.float64) - audio
    measured = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.1)
    assert add_noise(np.zeros(100, np.float32), 10.0, 1.0, np.random.default_rng(0)).tolist() == [0.0] * 100


def test_loud_audio_with_noise_stays_within_full_scale():
    assert np.max(np.abs(add_noise(tone(1.0, 0.99), 10.0, 0.0, np.random.default_rng(0)))) <= 0.99


def test_the_noise_tilt_moves_power_to_low_frequencies():
    def low_share(tilt: float) -> float:
        power = np.abs(np.fft.rfft(coloured_noise(32000, tilt, np.random.default_rng(1)))) ** 2
        frequencies = np.fft.rfftfreq(32000, 1 / 16000)
        return float(power[frequencies < 500].sum() / power.sum())

    assert low_share(0.0) < 0.1 < 0.5 < low_share(2.0)


def test_a_room_decays_by_60_db_and_keeps_the_clips_length_and_peak():
    response = room_response(0.5, 0.0, np.random.default_rng(2))
    assert len(response) == 8000 and response[0] == 1.0
    first, last = np.sum(response[1:800] ** 2), np.sum(response[-800:] ** 2)
    assert 10 * np.log10(first / last) > 40
    audio = tone(1.0, 0.5)
    wet = reverberate(audio, np.random.default_rng(3))
    assert len(wet) == len(audio) and np.max(np.abs(wet)) == pytest.approx(0.5, rel=1e-3)
    assert not np.allclose(wet, audio)


def test_a_run_with_augment_saves_the_setting(tmp_path, tiny_model):
    from tiny import speech_wav

    rows = []
    for i, text in enumerate(["Open the door.", "Close the window.", "It is late.", "Call me back.", "Good night."]):
        speech_wav(tmp_path / f"s{i}.wav", text)
        rows.append(json.dumps({"audio": f"s{i}.wav", "text": text, "id": f"s{i}", "source": "synthetic"}))
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    ws = init_workspace(tmp_path / "ws")
    result = CliRunner().invoke(main, [
        "run-experiment", "aug", "--workspace", str(ws.root), "--train", str(tmp_path / "train.jsonl"),
        "--model", str(tiny_model), "--augment", "1.0", "--max-steps", "2", "--eval-interval", "2",
        "--batch-size", "2", "--warmup-steps", "1", "--lora-r", "4"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = RunFolder(ws.run_dir("aug"))
    assert json.loads(folder.config_file.read_text())["augment"] == 1.0
    assert [e["step"] for e in folder.read_log() if e["event"] == "train"] == [1, 2]
