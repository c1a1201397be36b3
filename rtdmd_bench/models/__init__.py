"""Generator registry: ``ModelSpec`` entries with lazy adapter targets.

Contract of what ``build()`` returns (every family adapter implements it):

    gen.spec                      -> ModelSpec with the run's overrides applied
    gen.generate(prompts, seeds)  -> float32 [B,3,H,W] RGB in [0,1]; image i depends ONLY on (prompts[i],
                                     seeds[i]) and the settings, never on batch composition or rank: all noise
                                     (initial latent and every CPS step) comes from a CPU torch.Generator
                                     seeded with seeds[i].
    gen.describe()                -> dict for results.json "model": name, family, base (hub id), revision,
                                     weights_dir, lora [{path, sha256}], nfe, steps, sigmas, eta, guidance,
                                     height, width, dtype, sampler, tiny
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtdmd_bench.models.spec import ModelSpec, Published  # noqa: F401
from rtdmd_bench.registry import Registry

MODELS: Registry[ModelSpec] = Registry("model")

from rtdmd_bench.models import catalog as _catalog  # noqa: E402,F401  (fills MODELS)


def build(name: str, weights: str | Path | None = None, device: Any = "cpu", dtype: Any = None,
          lora: Sequence[str] = (), **overrides: Any):
    """Build generator ``name`` (registry name or ``"module:Attr"`` plugin) from the weights root.

    Args:
        name: model name.
        weights: weights root, ``"tiny"``, or None for ``$RTDMD_BENCH_WEIGHTS``.
        device: torch device; dtype defaults to the spec's on GPU and float32 on CPU.
        lora: extra LoRA files/dirs merged after the spec's own stack (absolute or root-relative).
        **overrides: ModelSpec fields to override (height, width, steps, eta, guidance, ...).
    """
    from rtdmd_bench.weights import resolve_root

    target = MODELS.get(name)
    spec = MODELS.spec(name) if name in MODELS else getattr(target, "spec", None)
    return target.from_weights(spec, resolve_root(weights), device=device, dtype=dtype, lora=tuple(lora),
                               **overrides)
