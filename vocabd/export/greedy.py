"""Greedy decoding of an exported ONNX Moonshine (`vocabd export --format onnx`) with onnxruntime alone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from vocabd.asr.labels import DECODER_START_ID
from vocabd.asr.transcribe import max_new_tokens
from vocabd.audio import SAMPLE_RATE
from vocabd.errors import VocabdError
from vocabd.export.onnx_export import DECODER, ENCODER


class OnnxTranscriber:
    """Transcribes 16 kHz mono float32 audio with the folder's encoder and decoder graphs."""

    def __init__(self, folder: Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        for name in (ENCODER, DECODER, "tokenizer.json", "config.json"):
            if not (folder / name).is_file():
                raise VocabdError(f"{folder}: not an ONNX export (no {name}); make one with "
                                  "`vocabd export --format onnx`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(folder / ENCODER), options, providers=providers)
        self.decoder = ort.InferenceSession(str(folder / DECODER), options, providers=providers)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.eos = int(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("eos_token_id", 2))

    def token_ids(self, audio: np.ndarray) -> list[int]:
        hidden = self.encoder.run(None, {"input_values": audio.reshape(1, -1).astype(np.float32)})[0]
        ids = [DECODER_START_ID]
        for _ in range(max_new_tokens(len(audio) / SAMPLE_RATE)):
            logits = self.decoder.run(None, {"input_ids": np.array([ids], dtype=np.int64),
                                             "encoder_hidden_states": hidden})[0]
            token = int(np.argmax(logits[0]))
            if token == self.eos:
                break
            ids.append(token)
        return ids[1:]

    def transcribe(self, audio: np.ndarray) -> str:
        return self.tokenizer.decode(self.token_ids(audio), skip_special_tokens=True).strip()

    def transcribe_all(self, audios: list[np.ndarray]) -> tuple[list[str], float]:
        """Texts and the wall seconds they took."""
        start = time.perf_counter()
        texts = [self.transcribe(a) for a in audios]
        return texts, time.perf_counter() - start
