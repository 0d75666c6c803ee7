"""PEFT LoRA/DoRA adapters on Moonshine: attach, save, restore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vocabd.asr.identity import ModelIdentity, check_adapter_base, write_identity
from vocabd.errors import VocabdError
from vocabd.training.config import TARGETS, RunConfig
from vocabd.training.dora import use_fused_dora


def lora_config(config: RunConfig, encoder_layers: int) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        use_dora=config.use_dora,
        target_modules=TARGETS[config.targets](encoder_layers),
        bias="none",
    )


def attach_adapter(model: Any, config: RunConfig) -> Any:
    """Wrap `model` in a trainable PEFT adapter; only the adapter's weights get gradients."""
    from peft import get_peft_model

    try:
        peft_model = get_peft_model(model, lora_config(config, model.config.encoder_num_hidden_layers))
    except ValueError as e:  # e.g. the target modules match nothing in this model
        raise VocabdError(f"cannot attach a {config.targets!r} adapter to {config.model}: {e}") from e
    use_fused_dora(peft_model)
    return peft_model


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_adapter(peft_model: Any, folder: Path, base: ModelIdentity) -> None:
    """PEFT's own layout (adapter_config.json + adapter_model.safetensors), naming the base really trained on
    (PEFT's loaders find it from `base_model_name_or_path`), plus `base_model.json` with its weights' hash."""
    peft_model.peft_config["default"].base_model_name_or_path = base.peft_base
    peft_model.save_pretrained(str(folder))
    write_identity(folder, base)


def restore_adapter(peft_model: Any, folder: Path, base: ModelIdentity) -> None:
    """Load saved adapter weights into an adapter built with the same settings, on the same base."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    check_adapter_base(folder, base)
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise VocabdError(f"{folder}: checkpoint has no adapter_model.safetensors")
    result = set_peft_model_state_dict(peft_model, load_file(str(weights)))
    missing = [k for k in getattr(result, "unexpected_keys", [])]
    if missing:
        raise VocabdError(f"{folder}: checkpoint does not fit this adapter (unexpected {missing[:3]})")
