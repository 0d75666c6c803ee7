"""ONNX graphs of the merged model: an encoder and a decoder (no cache) that `greedy.OnnxTranscriber` runs.

encoder_model.onnx: input_values [batch, samples] (16 kHz float) → last_hidden_state [batch, frames, hidden]
decoder_model.onnx: input_ids [batch, tokens], encoder_hidden_states → logits [batch, vocab] of the last token
The decoder recomputes the whole prefix at each step: simpler graphs, and Moonshine's outputs are short.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from vocabd.asr.model import Asr
from vocabd.export.hf import write_preprocessor

ENCODER = "encoder_model.onnx"
DECODER = "decoder_model.onnx"
OPSET = 18


def _modules(model):
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.model.encoder

        def forward(self, input_values):
            return self.encoder(input_values).last_hidden_state

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder, self.proj_out = model.model.decoder, model.proj_out

        def forward(self, input_ids, encoder_hidden_states):
            hidden = self.decoder(input_ids=input_ids, encoder_hidden_states=encoder_hidden_states,
                                  use_cache=False).last_hidden_state
            return self.proj_out(hidden[:, -1])

    return Encoder().eval(), Decoder().eval()


def write_onnx(asr: Asr, out: Path) -> None:
    """Export both graphs (weights inside each file) plus tokenizer and configs into `out`."""
    import torch

    encoder, decoder = _modules(asr.model)
    audio = torch.zeros(1, 16000)
    audio[0, ::7] = 0.1  # any non-silent second traces the same graph
    with torch.inference_mode():
        hidden = encoder(audio)
    ids = torch.tensor([[1, 3, 4]], dtype=torch.long)
    _export(encoder, (audio,), out / ENCODER, ["input_values"], ["last_hidden_state"],
            {"input_values": {0: "batch", 1: "samples"}, "last_hidden_state": {0: "batch", 1: "frames"}})
    _export(decoder, (ids, hidden), out / DECODER, ["input_ids", "encoder_hidden_states"], ["logits"],
            {"input_ids": {0: "batch", 1: "tokens"}, "encoder_hidden_states": {0: "batch", 1: "frames"},
             "logits": {0: "batch"}})
    asr.model.config.save_pretrained(out)
    asr.model.generation_config.save_pretrained(out)
    asr.tokenizer.save_pretrained(out)
    write_preprocessor(asr.path, out)


def _export(module, args, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    import torch

    chatter = io.StringIO()  # the exporter prints its steps; our own progress says what happens
    with torch.no_grad(), contextlib.redirect_stdout(chatter):
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
    leftover = path.with_name(path.name + ".data")
    if leftover.exists():
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
