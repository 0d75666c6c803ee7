"""The user's terminal stays clean: library warnings and log lines go to the workspace log."""

import json
import logging
import subprocess
import sys
import warnings

from test_asr import train_tiny_adapter
from tiny import speech_wav
from vocabd.audio import load_audio
from vocabd.log import configure_logging


def test_library_warnings_go_to_the_log_file_not_the_terminal(tmp_path, capfd):
    log_file = tmp_path / "vocabd.log"
    logging.captureWarnings(False)  # an earlier test's capture is stale: pytest swaps showwarning per test
    configure_logging(log_file, console=True)
    try:
        warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning)
        logging.getLogger("transformers.modeling_utils").warning("generation flags are not valid")
        logging.getLogger("vocabd.test").warning("vocabd_says_this")
    finally:
        logging.captureWarnings(False)
    terminal = capfd.readouterr().err
    assert "deprecated" not in terminal and "generation flags" not in terminal
    assert "vocabd_says_this" in terminal
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any("FutureWarning" in e["event"] and "is_gradient_checkpointing" in e["event"] for e in logged)
    assert any(e["event"] == "generation flags are not valid" for e in logged)


def test_transcribe_with_an_adapter_prints_only_the_text(tiny_model, tmp_path):
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    wav = speech_wav(tmp_path / "hi.wav", "hello there")
    adapter = train_tiny_adapter(tiny_model, load_audio(wav), "ok PBX", tmp_path / "adapter")
    done = subprocess.run([sys.executable, "-m", "vocabd", "transcribe", str(wav), "-m", str(tiny_model),
                           "-a", str(adapter), "-w", str(ws.root)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "ok PBX"
    assert "Warning" not in done.stderr and "Loading weights" not in done.stderr, done.stderr
    assert "model_loaded" in ws.log_file.read_text()
