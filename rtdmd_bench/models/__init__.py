"""Generator registry: ``ModelSpec`` entries with lazy adapter targets.

Contract of what ``build()`` returns (every family adapter implements it; base class ``models.common.FlowGenerator``):

    gen.spec                      -> ModelSpec with the run's overrides applied
    gen.generate(prompts, seeds, *, sigmas=None, eta=None, guidance=None)
                                  -> float32 [B,3,H,W] RGB in [0,1]; image i depends ONLY on (prompts[i],
                                     seeds[i]) and the settings, never on batch composition or rank: all noise
                                     (initial latent and every CPS step) comes from a CPU torch.Generator
                                     seeded with seeds[i] (equal up to the reduction order of batched kernels).
    gen.describe()                -> dict for results.json "model": name, family, base (hub id), revision,
                                     weights_dir, lora [{path, sha256}], nfe, steps, step_list, sigmas, eta,
                                     guidance, height, width, dtype, sampler, tiny

Training API (same object; all latents are spatial ``[B, C, h, w]``: SD3/FLUX.1 ``[B,16,H/8,W/8]``,
FLUX.2-klein ``[B,128,H/16,W/16]``; FLUX token packing happens inside ``predict_velocity``):

    gen.encode(prompts) -> Cond           no-grad, cached per unique prompt (LRU, ``extra["prompt_cache_size"]``,
                                           default 256); ``Cond(embeds [B,L,D], pooled [B,P] | None)`` with
                                           ``select(idx)``, ``repeat_interleave(k)``, ``to(...)``, ``Cond.cat``
    gen.encode_uncond(n) -> Cond          empty-string embedding broadcast to n rows
    gen.cache_info() -> dict              hits, misses, encoder_calls, size
    gen.predict_velocity(x, sigma, cond, guidance=1.0, transformer=None) -> v [B,C,h,w] (model dtype)
                                           sigma: float / 0-d / [B] shifted sigma; the model timestep is 1000σ
                                           (FLUX: bf16-quantised, P1). guidance > 1: two-pass CFG with the empty
                                           prompt (SD3 batched, FLUX.2 two forwards); FLUX.1: guidance embedding
                                           value (one forward). ``transformer`` swaps in a generator/fake/teacher
                                           copy of the same architecture. Grad flows when enabled.
    gen.decode(latents) -> float32 [B,3,H,W] in [0,1]   differentiable when grad is enabled (BN de-norm for FLUX.2)
    gen.initial_noise(seeds, generators=None) -> [B,C,h,w] model dtype, per-sample CPU generators
    gen.latent_shape -> (C, h, w)
    gen.sigmas -> list[float]              N+1 levels ending in 0 (CPS few-step or the family's Euler schedule)
    gen.cps_sigmas(step_list=None) -> list[float]  few-step CPS levels + 0 whatever spec.sampler is (teacher entries)
    gen.euler_sigmas(steps) -> list[float] the family's standard multi-step schedule (teacher sampling)
    gen.transformer, gen.vae, gen.pipe, gen.dtype, gen.device

Everything is loaded frozen (``requires_grad_(False)``, eval mode); trainers enable what they train. CPS steps and
log-probs come from ``rtdmd_bench.sampling`` (``cps_step``, ``cps_log_prob``), conversions from ``rtdmd_bench.flow``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtdmd_bench.models.spec import ModelSpec  # noqa: F401
from rtdmd_bench.registry import Registry

MODELS: Registry[ModelSpec] = Registry("model")


def _write_tiny_models(root: Path) -> None:
    from rtdmd_bench.hf import quiet_hf
    from rtdmd_bench.models.tiny import write_tiny_models
    from rtdmd_bench.seeds import torch_seeded

    quiet_hf()
    with torch_seeded(0):
        write_tiny_models(root)


TINY_PART = ("models", _write_tiny_models)  # the generators' part of ``--weights tiny`` (weights.ensure_tiny_part)

from rtdmd_bench.models import catalog as _catalog  # noqa: E402,F401  (fills MODELS)


def resolve_spec(name: str, **overrides: Any) -> ModelSpec | None:
    """The ``ModelSpec`` a build of ``name`` would use, overrides applied and checked (no torch, no weights): the
    validation ``eval`` runs before anything loads. A ``module:Attr`` plugin must have ``from_weights``; one without
    a class-level ``spec`` returns None (it owns its settings).

    Raises:
        RegistryError: unknown name, or a plugin that is not a generator. ValueError / TypeError: bad overrides.
    """
    from rtdmd_bench.models.common import normalise_spec
    from rtdmd_bench.registry import RegistryError

    if name in MODELS:
        return normalise_spec(MODELS.spec(name), overrides)
    target = MODELS.get(name)
    if not callable(getattr(target, "from_weights", None)):
        raise RegistryError(f"model plugin {name!r} is not a generator: it has no from_weights(spec, root, ...) "
                            f"(subclass rtdmd_bench.models.common.FlowGenerator, or see docs/extending.md)")
    spec = getattr(target, "spec", None)
    return normalise_spec(spec, overrides) if isinstance(spec, ModelSpec) else None


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
    return target.from_weights(spec, resolve_root(weights, TINY_PART), device=device, dtype=dtype, lora=tuple(lora),
                               **overrides)
