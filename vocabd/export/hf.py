"""A plain transformers folder: the merged model as safetensors, its tokenizer and feature extractor."""

from __future__ import annotations

import shutil
from pathlib import Path

from vocabd.asr.convert import portable_tokenizer_class
from vocabd.asr.model import Asr

PREPROCESSOR = "preprocessor_config.json"


def write_hf(asr: Asr, out: Path) -> None:
    """`MoonshineForConditionalGeneration.from_pretrained(out)` and `AutoTokenizer.from_pretrained(out)` load it."""
    asr.model.save_pretrained(out, safe_serialization=True)
    asr.tokenizer.save_pretrained(out)
    write_preprocessor(asr.path, out)
    portable_tokenizer_class(out / "tokenizer_config.json")


def write_preprocessor(base: Path, out: Path) -> None:
    """The base model's feature extractor settings (16 kHz raw audio in), or Moonshine's when it has none."""
    if (base / PREPROCESSOR).is_file():
        shutil.copyfile(base / PREPROCESSOR, out / PREPROCESSOR)
        return
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False,
                             return_attention_mask=True).save_pretrained(out)

