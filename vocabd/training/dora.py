"""DoRA's forward with fewer passes over the activations: the same function as PEFT's, about LoRA's cost.

PEFT computes DoRA's output as `result + (m - 1) * (result - bias) + m * s * B(A(x))` with `m` the
magnitude over the detached norm `||W + s B A||`: six elementwise passes over every adapted layer's output,
plus the norm rebuilt from an identity matrix on each call. Here the same value is
`bias + m * ((result - bias) + s * B(A(x)))`: the LoRA product is added inside one matrix multiply and the
scaling is one fused multiply-add, and the norm is computed once per weight update (it changes only when the
optimizer steps), not on every micro-batch. Saved adapters, merging and export stay PEFT's own.
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.lora.variants import DoraLinearVariant


class FusedDoraLinearVariant(DoraLinearVariant):
    @staticmethod
    def forward(module: Any, active_adapter: str, x: torch.Tensor, result: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        dropout = module.lora_dropout[active_adapter]
        dropping = module.training and not isinstance(dropout, torch.nn.Identity)
        if dropping or module.fan_in_fan_out:  # PEFT's path: dropout changes x, so `result` cannot be reused
            return DoraLinearVariant.forward(module, active_adapter, x, result, **kwargs)
        lora_A, lora_B = module.lora_A[active_adapter], module.lora_B[active_adapter]
        scaling = module.scaling[active_adapter]
        base = module.get_base_layer()
        scale = module.lora_magnitude_vector[active_adapter].weight / weight_norm(module, active_adapter)
        out_features = result.shape[-1]
        flat = result.reshape(-1, out_features)
        if base.bias is not None:
            flat = flat - base.bias
        hidden = lora_A(x).reshape(flat.shape[0], -1)
        adapted = torch.addmm(flat, hidden, lora_B.weight.t(), alpha=scaling)
        if base.bias is not None:
            adapted = torch.addcmul(base.bias, scale, adapted)
        else:
            adapted = adapted * scale
        return adapted.reshape(result.shape)


def weight_norm(module: Any, adapter: str) -> torch.Tensor:
    """`||W + s B A||` per output row, detached (DoRA paper, section 4.3), recomputed only after A or B changed."""
    a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
    key = (adapter, a.data_ptr(), a._version, b.data_ptr(), b._version)
    cached = getattr(module, "_vocabd_dora_norm", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    with torch.no_grad():
        weight = module.get_base_layer().weight
        norm = torch.linalg.norm(torch.addmm(weight, b, a, alpha=module.scaling[adapter]), dim=1)
    module._vocabd_dora_norm = (key, norm)
    return norm


def use_fused_dora(model: Any) -> int:
    """Give every DoRA Linear layer of the PEFT `model` the fused forward; returns how many there were."""
    count = 0
    for module in model.modules():
        variants = getattr(module, "lora_variant", None)
        if not isinstance(variants, dict):
            continue
        for name, variant in list(variants.items()):
            if type(variant) is DoraLinearVariant:
                variants[name] = FusedDoraLinearVariant()
                count += 1
    return count
