"""Reward registry: one ``RewardSpec`` per scorer, targets imported lazily.

``build(name, weights, device, dtype)`` returns a frozen, eval-mode ``Reward`` nn.Module; the same module
serves evaluation (no grad, uint8-quantised input) and reward back-propagation (grad enabled).
Implementation classes take their ``spec`` from this table (``spec = REWARDS.spec("name")``), so the
metadata exists exactly once and is readable without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rtdmd_bench.registry import Registry, RegistryError
from rtdmd_bench.rewards.spec import RewardSpec

REWARDS: Registry[RewardSpec] = Registry("reward")

REWARDS.add(RewardSpec(
    name="jpeg_compressibility", target="rtdmd_bench.rewards.cheap:JpegCompressibility",
    description="DDPO JPEG compressibility: -(JPEG size in kB) at quality 95",
    version="ddpo-q95", units="-kB", higher_is_better=True, differentiable=False,
    value_range=None, typical_range=(-200.0, 0.0), needs_prompt=False,
))
REWARDS.add(RewardSpec(
    name="saturation", target="rtdmd_bench.rewards.cheap:Saturation",
    description="mean HSV saturation of the image",
    version="hsv-mean-1", units="fraction", higher_is_better=True, differentiable=True,
    value_range=(0.0, 1.0), typical_range=(0.1, 0.6), needs_prompt=False,
))


class RewardUnavailableError(RegistryError):
    """A known scorer that cannot run in this environment (the message says why and what to do)."""


def reward_spec(name: str) -> RewardSpec:
    """Spec of a registered reward, or of a ``"module:Attr"`` plugin class (its ``spec`` attribute)."""
    if name in REWARDS or ":" not in name:
        return REWARDS.spec(name)
    spec = getattr(REWARDS.get(name), "spec", None)
    if not isinstance(spec, RewardSpec):
        raise RegistryError(f"reward plugin {name!r} has no RewardSpec 'spec' attribute")
    return spec


def build(name: str, weights: str | Path | None = None, device: Any = "cpu", dtype: Any = None):
    """Build reward ``name`` (registry name or ``"module:Attr"``) from the weights root.

    Args:
        name: reward name.
        weights: weights root directory, ``"tiny"`` for the tiny random weights, or None for the default
            root (``$RTDMD_BENCH_WEIGHTS``).
        device: torch device.
        dtype: parameter dtype (default float32).

    Returns:
        A frozen ``Reward`` module in eval mode on ``device``.
    """
    spec = reward_spec(name)
    if not spec.available:
        raise RewardUnavailableError(f"reward {name!r} is known but unavailable here: {spec.unavailable_reason}")
    cls = REWARDS.get(name)
    from rtdmd_bench.weights import resolve_root

    root = resolve_root(weights)
    factory = getattr(cls, "from_weights", None)
    module = factory(root, device=device, dtype=dtype) if factory is not None else cls()
    module = module.to(device)
    if dtype is not None:
        module = module.to(dtype)
    return module.freeze()
