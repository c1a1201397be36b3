"""LoRA on the generator and the fake score (ALGORITHM.md §3.1, §4.1, pitfall P8) and its export format.

Injection uses peft (``inject_adapter_in_model``) with the per-family target modules of §3.1; every non-LoRA
parameter is frozen. Export writes the reference's LoRA-only ``.pt`` (``lora_A``/``lora_B`` weights, peft key
names without the adapter name) plus ``adapter_config.json`` holding ``r``/``lora_alpha``/``target_modules``
in the same folder; ``rtdmd-bench eval --model NAME --lora FILE`` merges it as ``W += (α/r)·B·A``. With a
``training`` record, ``training.json`` beside it says how the LoRA was trained (the evaluation harness copies it
into ``results.json["model"]`` so the reward-hacking check knows the training rewards).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from rtdmd_bench.io import atomic_write_bytes, atomic_write_json
from rtdmd_bench.models.lora import strip_prefixes

ADAPTER = "default"
TRAINING_JSON = "training.json"  # read by rtdmd_bench.models.lora.training_info


def lora_targets(family: str, net: nn.Module) -> list[str]:
    """peft ``target_modules`` of a registered generator family for ``net`` (§3.1; ``FamilySpec.lora_targets``)."""
    from rtdmd_bench.models.family import FAMILIES

    if family not in FAMILIES:
        raise KeyError(f"no LoRA target table for family {family!r}; set Backbone.lora_targets explicitly")
    return FAMILIES.spec(family).lora_targets(net)


def inject_lora(net: nn.Module, targets: Sequence[str], rank: int, alpha: float, seed: int = 0) -> nn.Module:
    """Add a fresh peft LoRA (gaussian init: ``A ~ N(0, 1/r)``, ``B = 0``) and freeze everything else.

    The output equals the base model's until B moves. ``seed`` fixes the A init (same on every rank).
    """
    from peft import LoraConfig, inject_adapter_in_model

    cfg = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        net = inject_adapter_in_model(cfg, net, adapter_name=ADAPTER)
    finally:
        torch.random.set_rng_state(state)
    for name, p in net.named_parameters():
        p.requires_grad_("lora_" in name)
    return net


def enable_gradient_checkpointing(net: nn.Module) -> nn.Module:
    """Recompute each transformer block's activations in backward instead of storing them (``model.
    gradient_checkpointing``): memory O(blocks) boundary states instead of O(all activations), ~1 extra forward.

    Uses diffusers' ``enable_gradient_checkpointing`` with an explicit *non-reentrant* ``torch.utils.checkpoint``:
    the reentrant variant returns no gradient for parameters inside a block when the block's inputs do not require
    grad, which is exactly the LoRA case (frozen patch embedding upstream), and it does not compose with DDP/FSDP2
    hooks. Works before or after ``inject_lora`` (peft swaps Linear layers inside the blocks, the block-level flag
    stays). Only grad-enabled forwards are checkpointed, so no-grad rollouts are unaffected.
    """
    from torch.utils.checkpoint import checkpoint

    if not callable(getattr(net, "enable_gradient_checkpointing", None)):
        raise TypeError(f"{type(net).__name__} has no enable_gradient_checkpointing(); set "
                        f"model.gradient_checkpointing: false for this backbone")

    def _non_reentrant(module: nn.Module, *args):
        return checkpoint(module.__call__, *args, use_reentrant=False)

    net.enable_gradient_checkpointing(_non_reentrant)
    return net


def _lora_layers(net: nn.Module) -> Iterator[nn.Module]:
    from peft.tuners.lora import LoraLayer

    for m in net.modules():
        if isinstance(m, LoraLayer) and ADAPTER in m.lora_A:
            yield m


def load_lora(net: nn.Module, state: Mapping[str, Tensor]) -> None:
    """Copy exported LoRA weights (``...lora_A.weight`` keys) into the injected adapter; every key must match."""
    own = {strip_prefixes(k).replace(f".{ADAPTER}.", "."): p for k, p in net.named_parameters() if "lora_" in k}
    clean = {strip_prefixes(k).replace(f".{ADAPTER}.", "."): v for k, v in state.items()}
    missing, unexpected = sorted(set(own) - set(clean)), sorted(set(clean) - set(own))
    if missing or unexpected:
        raise KeyError(f"LoRA keys do not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    with torch.no_grad():
        for k, p in own.items():
            p.copy_(clean[k].to(p.dtype))


def merge_and_reinit(net: nn.Module, reference_std_one: bool = False, seed: int = 0) -> None:
    """Merge the current LoRA into the base weights (``W += (α/r)·B·A``) and restart it as an identity delta.

    Stage-2 init (§4.1 steps 3-5): ``B = 0`` and ``A ~ N(0, 1/r)`` (peft's gaussian init, intended), or
    ``A ~ N(0, 1)`` with ``reference_std_one`` (the reference's ``nn.init.normal_``, P8: ~r× larger early
    B-gradients).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in _lora_layers(net):
            a, b = layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight
            delta = (b.float() @ a.float()) * layer.scaling[ADAPTER]  # [out, in]
            base = layer.get_base_layer().weight
            base.add_(delta.to(base.dtype))
            std = 1.0 if reference_std_one else 1.0 / layer.r[ADAPTER]
            a.copy_(torch.randn(a.shape, generator=g) * std)
            b.zero_()


@contextmanager
def adapters_disabled(net: nn.Module) -> Iterator[None]:
    """Run ``net`` without its LoRA (the initial policy, for GRPO's optional KL term)."""
    layers = list(_lora_layers(net))
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def lora_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The LoRA entries of a (trainable) state dict in export naming: no wrapper prefix, no adapter name."""
    return {strip_prefixes(k).replace(f".{ADAPTER}.", "."): v.detach().cpu().contiguous()
            for k, v in state.items() if "lora_" in k}


def training_record(stage: int, trainer: str, rewards: Mapping[str, float], base_model: str, steps: int,
                    **extra: object) -> dict:
    """The ``training.json`` content: ``{"stage", "trainer", "rewards": {name: weight}, "base_model", "steps"}``.

    ``rewards`` are every reward the run optimised (advantage rewards and BP rewards; stage 1: none). ``extra``
    adds fields (``bp_rewards``, ``config_hash``, ...) that must be JSON-serialisable.
    """
    return {"stage": int(stage), "trainer": str(trainer), "rewards": {str(k): float(w) for k, w in rewards.items()},
            "base_model": str(base_model), "steps": int(steps), **extra}


def export_lora(path: str | Path, state: Mapping[str, Tensor], rank: int, alpha: float,
                targets: Sequence[str], training: Mapping | None = None) -> Path:
    """Write ``path`` (``.pt``: ``{key: tensor}`` of lora_A/lora_B) and ``adapter_config.json`` next to it;
    with ``training`` (see ``training_record``) also ``training.json``."""
    import io

    path = Path(path)
    weights = lora_state(state)
    if not weights:
        raise ValueError("no LoRA weights to export (was LoRA injected?)")
    buf = io.BytesIO()
    torch.save(weights, buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_json(path.parent / "adapter_config.json", {
        "peft_type": "LORA", "r": int(rank), "lora_alpha": float(alpha), "target_modules": list(targets),
        "init_lora_weights": "gaussian", "files": [path.name]})
    if training is not None:
        atomic_write_json(path.parent / TRAINING_JSON, dict(training))
    return path
