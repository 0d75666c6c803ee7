"""Synthesizer backends: piper and espeak speak, the f5_mlx path runs end to end with a tiny random model."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest

from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.config import Config
from vocabd.tts import (SynthesisError, auto_order, expected_backend, finish_audio, is_apple_silicon, select_backend,
                        unavailable_reason)

SENTENCE = "Please open the P B X settings and email ops at acme dot io before Friday."
WORDS = len(SENTENCE.split())


def assert_speech(audio: np.ndarray, words: int) -> None:
    """Non-silent 16 kHz float audio whose length fits the number of words spoken."""
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = len(audio) / SAMPLE_RATE
    assert 0.2 * words < seconds < 1.0 * words, seconds
    assert float(np.abs(audio).max()) > 0.3
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    voiced = np.sqrt((frames**2).mean(axis=1)) > 0.02
    assert voiced.mean() > 0.3  # mostly speech, not a click in silence


@pytest.mark.skipif(unavailable_reason("piper") is not None, reason="piper not installed")
def test_piper_speaks_16k_with_varied_settings():
    from vocabd.tts.piper import PiperSynthesizer

    piper = PiperSynthesizer(workers=1)
    voices = [piper.pick_voice(random.Random(i)) for i in range(2)]
    assert voices[0].settings != voices[1].settings and voices[0].name == "piper:joe"
    fast = dict(voices[0].settings, length_scale=0.85, noise_w_scale=0.0)  # no random phoneme lengths here
    slow = dict(voices[0].settings, length_scale=1.2, noise_w_scale=0.0)
    short = piper.render(SENTENCE, type(voices[0])(voices[0].name, fast))
    long = piper.render(SENTENCE, type(voices[0])(voices[0].name, slow))
    assert_speech(short, WORDS)
    assert len(long) > 1.08 * len(short)  # the length scale changes the rate (~15% from 0.85 to 1.2 here)
    assert not piper.cloned and piper.identity().startswith("piper en_US-joe-medium.onnx")


def test_espeak_speaks_16k_in_train_and_heldout_voices():
    from vocabd.tts.espeak import HELDOUT_VOICES, TRAIN_VOICES, EspeakSynthesizer

    assert not set(TRAIN_VOICES) & set(HELDOUT_VOICES)
    espeak = EspeakSynthesizer(voices=HELDOUT_VOICES)
    voice = espeak.pick_voice(random.Random(0))
    assert voice.name.removeprefix("espeak:") in HELDOUT_VOICES
    assert_speech(espeak.render(SENTENCE, voice), WORDS)


def test_speed_perturbation_shortens_and_raises_the_voice():
    rate = 16000
    t = np.arange(rate) / rate
    audio = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    plain, fast = finish_audio(audio, rate, pad_seconds=0), finish_audio(audio, rate, pad_seconds=0, speed=1.1)
    assert abs(len(plain) / len(fast) - 1.1) < 0.01
    pitch = lambda x: np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x)  # noqa: E731
    assert abs(pitch(fast) - 220) < 3 and abs(pitch(plain) - 200) < 3


def test_finish_audio_trims_resamples_and_drops_silence():
    rate = 22050
    t = np.arange(rate) / rate
    tone = np.concatenate([np.zeros(rate), 0.2 * np.sin(2 * np.pi * 200 * t), np.zeros(rate)]).astype(np.float32)
    out = finish_audio(tone, rate, peak=0.8, pad_seconds=0.1)
    assert abs(len(out) / SAMPLE_RATE - 1.2) < 0.02 and abs(float(np.abs(out).max()) - 0.8) < 1e-3
    assert len(finish_audio(np.zeros(rate, dtype=np.float32), rate)) == 0


def test_auto_selection_on_linux_and_explicit_choices():
    config = Config()
    assert "f5_mlx" not in auto_order() or is_apple_silicon()
    if unavailable_reason("piper") is None:
        assert select_backend(config).backend == expected_backend(config) == "piper"
    assert select_backend(config, exclude=("piper",)).backend == "espeak"
    config.synthesis.backend = "espeak"
    assert select_backend(config).backend == "espeak"
    config.synthesis.backend = "nonesuch"
    with pytest.raises(SynthesisError, match="unknown backend"):
        select_backend(config)


def test_f5_explicitly_chosen_without_weights_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    config = Config()
    config.synthesis.backend = "f5_mlx"
    with pytest.raises(SynthesisError, match="Hugging Face cache"):
        select_backend(config, voice_ref=tmp_path / "voice_ref.wav")


# --- f5_mlx with a tiny random DiT + Vocos ------------------------------------------------------

def f5_importable() -> bool:
    try:
        import f5_tts_mlx.cfm  # noqa: F401
    except ImportError:
        return False
    return True


needs_mlx = pytest.mark.skipif(not f5_importable(), reason="f5-tts-mlx / mlx[cpu] not installed")


def tiny_f5():
    """A randomly initialised F5-TTS (one small DiT block) with a one-layer Vocos vocoder."""
    from f5_tts_mlx.cfm import F5TTS
    from f5_tts_mlx.dit import DiT
    from vocos_mlx.model import ISTFTHead, MelSpectrogramFeatures, Vocos, VocosBackbone
    import mlx.core as mx

    mx.random.seed(0)
    vocab = {c: i for i, c in enumerate(" " + string.ascii_letters + string.digits + string.punctuation)}
    dit = DiT(dim=32, depth=1, heads=2, dim_head=16, ff_mult=2, text_dim=16, conv_layers=1, text_num_embeds=len(vocab))
    vocos = Vocos(MelSpectrogramFeatures(), VocosBackbone(input_channels=100, dim=32, intermediate_dim=64, num_layers=1),
                  ISTFTHead(dim=32, n_fft=1024, hop_length=256))
    return F5TTS(transformer=dit, vocab_char_map=vocab, vocoder=vocos.decode)


def bundled_reference() -> Path:
    import f5_tts_mlx

    return Path(f5_tts_mlx.__file__).parent / "tests" / "test_en_1_ref_short.wav"


@needs_mlx
def test_f5_mlx_end_to_end_with_a_tiny_model(tmp_path):
    from vocabd.tts.f5_mlx import F5_RATE, F5Synthesizer, prepare_reference, sidecar_text

    ref_wav = tmp_path / "voice_ref.wav"
    write_wav(ref_wav, load_audio(bundled_reference(), 44_100), 44_100)  # any rate in; 24 kHz inside
    (tmp_path / "voice_ref.txt").write_text("Some call me nature, others call me mother nature.\n")
    reference = prepare_reference(ref_wav, sidecar_text(ref_wav))
    assert reference.text.startswith("Some call me nature")
    assert 5.0 <= len(reference.audio) / F5_RATE <= 10.0
    synth = F5Synthesizer(tiny_f5(), reference, model_id="tiny", steps=2)
    voice = synth.pick_voice(random.Random(0))
    audio = synth.render("Open the P B X settings.", voice)
    assert synth.cloned and voice.name == "f5:cloned" and synth.workers == 1
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and np.abs(audio).max() > 0.1
    # the generated part follows the reference's pace: bytes of text per frame
    expected = (synth._frames("Open the P B X settings.", voice.settings["speed"]) * 256 - len(reference.audio)) / F5_RATE
    assert abs(len(audio) / SAMPLE_RATE - expected) < 0.6
    other = F5Synthesizer(tiny_f5(), prepare_reference(ref_wav, "Another transcript."), model_id="tiny")
    assert synth.identity() != other.identity()  # a new voice sample never hits old cache entries


@needs_mlx
def test_f5_reference_longer_than_10s_is_cut_and_transcribed(tmp_path):
    from vocabd.tts.f5_mlx import F5_RATE, prepare_reference

    speech = load_audio(bundled_reference(), SAMPLE_RATE)
    long_wav = tmp_path / "long.wav"
    write_wav(long_wav, np.concatenate([speech, speech, speech]))  # about 16 s
    heard: list[np.ndarray] = []

    def transcribe(audio: np.ndarray) -> str:
        heard.append(audio)
        return "  some call me nature  "

    reference = prepare_reference(long_wav, "a transcript of all 16 seconds", transcribe)
    kept = len(reference.audio) / F5_RATE
    assert 5.0 <= kept <= 10.0
    assert reference.text == "some call me nature"  # the old transcript no longer matched: transcribed
    assert abs(len(heard[0]) / SAMPLE_RATE - kept) < 0.01


@needs_mlx
def test_f5_reference_too_short_is_refused(tmp_path):
    from vocabd.tts.f5_mlx import VoiceSampleError, prepare_reference

    short = tmp_path / "short.wav"
    write_wav(short, load_audio(bundled_reference(), SAMPLE_RATE)[: 2 * SAMPLE_RATE])
    with pytest.raises(VoiceSampleError, match="short.wav"):
        prepare_reference(short, "too short")
