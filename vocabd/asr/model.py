"""Load a Moonshine model: a local folder, a Hugging Face hub id, or the offline base model."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vocabd.asr.identity import ModelIdentity, check_adapter_base, identify
from vocabd.errors import VocabdError
from vocabd.hub import hub_offline, hub_reachable
from vocabd.log import get_logger, route_library_logging

DEFAULT_MODEL = "UsefulSensors/moonshine-tiny"
OFFLINE_MODEL = "moonshine-cpp"  # the offline base model built from the PyPI wheel

log = get_logger(__name__)


@dataclass
class Asr:
    model: Any  # MoonshineForConditionalGeneration, in eval mode
    tokenizer: Any  # PreTrainedTokenizerFast
    path: Path
    name: str  # what loads this base again (identity.name): a hub id, a folder or "moonshine-cpp"
    identity: ModelIdentity  # the base really loaded: its source and a hash of its weights
    adapter: Path | None = None
    bias: Any = None  # a JargonBias (vocabd/asr/biasing.py) that transcribe() applies, or None
    beams: int = 1  # beam search width in transcribe(); 1 = greedy


@lru_cache(maxsize=8)
def resolve_model(name: str | None = None, offline_fallback: bool = True) -> Path:
    """A local model folder for `name`: itself, the hub download, or the offline build."""
    name = str(name or DEFAULT_MODEL)
    if name == OFFLINE_MODEL:
        from vocabd.asr.offline import build_offline_model

        return build_offline_model()
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise VocabdError(f"{local}: not a model folder (no config.json)")
        return local.resolve()
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise VocabdError(f"{name}: model folder not found")
    return _from_hub(name, offline_fallback)


def _from_hub(model_id: str, offline_fallback: bool) -> Path:
    """The hub cache's copy when there is one (no network round trip per transcription; `vocabd model
    fetch` updates it), else a download."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except (OSError, ValueError):  # not in the cache yet
        pass
    try:
        if hub_offline() or not hub_reachable():
            raise OSError("the Hugging Face Hub is unreachable from here (or HF_HUB_OFFLINE is set)")
        return Path(snapshot_download(model_id))
    except (OSError, ValueError) as e:  # hub errors derive from OSError; bad ids from ValueError
        if not offline_fallback:
            raise VocabdError(f"cannot get {model_id} from the Hugging Face Hub: {e}") from e
        log.warning("hub_unreachable_using_offline_model", model=model_id, error=str(e).splitlines()[0])
        from vocabd.asr.offline import build_offline_model

        return build_offline_model()


def load_asr(model: str | Path | None = None, adapter: Path | None = None, offline_fallback: bool = True) -> Asr:
    """Load model + tokenizer for inference; an adapter is merged into the weights."""
    import torch
    from transformers import AutoTokenizer, MoonshineForConditionalGeneration

    route_library_logging()
    path = resolve_model(str(model) if model else None, offline_fallback)
    identity = identify(str(model or DEFAULT_MODEL), path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if adapter is not None:
        check_adapter_base(Path(adapter), identity)
    net = merged_weights(path, Path(adapter)) if adapter is not None else \
        MoonshineForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    net.eval()
    log.info("model_loaded", model=identity.label(), path=str(path), adapter=str(adapter or ""))
    return Asr(model=net, tokenizer=tokenizer, path=path, name=identity.name, identity=identity, adapter=adapter)


def merged_weights(base: Path, adapter: Path) -> Any:
    """Base + adapter as one plain model: from the merged cache, else merged now and cached."""
    import torch
    from transformers import MoonshineForConditionalGeneration

    from vocabd.asr.merged import cached_merge, store_merge

    if not (adapter / "adapter_config.json").is_file():
        raise VocabdError(f"{adapter}: not an adapter folder (no adapter_config.json)")
    cached = cached_merge(base, adapter)
    if cached is not None:
        return MoonshineForConditionalGeneration.from_pretrained(cached, dtype=torch.float32)
    net = merge_adapter(MoonshineForConditionalGeneration.from_pretrained(base, dtype=torch.float32), adapter)
    store_merge(net, base, adapter)
    return net


def merge_adapter(net: Any, adapter: Path) -> Any:
    """Apply a PEFT LoRA/DoRA adapter folder and fold it into the base weights."""
    from peft import PeftModel

    if not (adapter / "adapter_config.json").is_file():
        raise VocabdError(f"{adapter}: not an adapter folder (no adapter_config.json)")
    return PeftModel.from_pretrained(net, str(adapter)).merge_and_unload()
