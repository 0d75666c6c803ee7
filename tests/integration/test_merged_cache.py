"""An adapter is merged into the base weights once; later loads read the merged model from the user cache."""

from __future__ import annotations

import subprocess
import sys

from test_asr import train_tiny_adapter
from tiny import speech_wav
from vocabd.asr.model import load_asr
from vocabd.asr.transcribe import transcribe
from vocabd.audio import load_audio

LOAD = """
import sys
from vocabd.asr.model import load_asr
from vocabd.asr.transcribe import transcribe
from vocabd.audio import load_audio
asr = load_asr(sys.argv[1], adapter=sys.argv[2])
print(transcribe(asr, [load_audio(sys.argv[3])])[0], "peft" in sys.modules)
"""


def test_merged_model_is_cached_and_follows_the_adapter(tiny_model, tmp_path, monkeypatch):
    cache = tmp_path / "merged"
    monkeypatch.setenv("VOCABD_MERGED_CACHE", str(cache))
    audio = load_audio(speech_wav(tmp_path / "hi.wav", "hello there"))
    adapter = train_tiny_adapter(tiny_model, audio, "ok PBX", tmp_path / "adapter")

    assert transcribe(load_asr(tiny_model, adapter=adapter), [audio]) == ["ok PBX"]  # merged with PEFT, stored
    assert len(list(cache.iterdir())) == 1 and (next(cache.iterdir()) / "merged.done").is_file()
    wav = tmp_path / "hi.wav"
    cmd = [sys.executable, "-c", LOAD, str(tiny_model), str(adapter), str(wav)]
    again = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    assert again == "ok PBX False"  # a new process reads the merged weights: PEFT is never imported

    undo_adapter(adapter)  # changed in place (its B matrices zeroed: the identity): a new entry
    assert transcribe(load_asr(tiny_model, adapter=adapter), [audio]) == transcribe(load_asr(tiny_model), [audio])
    assert len(list(cache.iterdir())) == 2


def undo_adapter(adapter) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(adapter / "adapter_model.safetensors")
    save_file({k: v * 0 if "lora_B" in k else v for k, v in weights.items()}, adapter / "adapter_model.safetensors")
