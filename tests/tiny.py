"""Small real things for tests: a randomly initialised tiny Moonshine folder, spoken audio, and `wait_until`."""

from __future__ import annotations

import shutil
import string
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vocabd.audio import SAMPLE_RATE, load_audio, write_wav

SPECIALS = ["<unk>", "<s>", "</s>"]


def build_tiny_tokenizer():
    """A Llama-style tokenizer (metaspace + byte fallback) over single characters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pieces = SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + ["▁"]
    pieces += [c for c in string.ascii_letters + string.digits + string.punctuation if c not in pieces]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>")


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """Write a tiny random Moonshine model folder (about 100k parameters) that `load_asr` loads."""
    import torch
    from transformers import MoonshineConfig, MoonshineForConditionalGeneration, Wav2Vec2FeatureExtractor

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer()
    config = MoonshineConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
        encoder_num_hidden_layers=1, decoder_num_hidden_layers=1,
        encoder_num_attention_heads=2, decoder_num_attention_heads=2,
        max_position_embeddings=256, initializer_range=0.2,  # no padding_idx: it would zero the eos row
    )
    model = MoonshineForConditionalGeneration(config)
    model.generation_config.decoder_start_token_id = 1
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 2
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=False,
                             return_attention_mask=True).save_pretrained(dest)
    return dest


def tiny_workspace_config(model: Path) -> str:
    """`vocabd.toml` for a whole chain in seconds: the tiny model, a few clips and steps, espeak voices."""
    return f"""[model]
base = "{model}"
[mini]
clips = 3
max_steps = 2
eval_interval = 1
[full]
clips = 4
max_steps = 3
eval_interval = 2
[train]
batch_size = 2
warmup_steps = 1
[synthesis]
backend = "espeak"
[general]
sentences = 6
"""


def speech_wav(path: Path, text: str, voice: str = "en-us", sample_rate: int = SAMPLE_RATE) -> Path:
    """Real speech from espeak-ng, resampled to `sample_rate`, as a WAV file."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    audio = load_audio(raw, sample_rate)
    raw.unlink()
    write_wav(path, audio, sample_rate)
    return path


def tone(seconds: float, freq: float = 220.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Return once `predicate()` is true (checked every 50 ms); fail the test after `timeout` seconds, naming
    `what` it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
