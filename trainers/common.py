"""Glue shared by the recipes: backbone/reward construction and start-up validation (before any model loads)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rtdmd_bench.training.backbone import Backbone
from rtdmd_bench.training.config import ModelSection


def validate_rewards(weights: Mapping[str, float], bp: Mapping[str, float] | None = None,
                     options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Unknown reward names (did-you-mean), BP on a non-differentiable reward and unknown or ill-typed
    ``reward_options`` fail here, before any model loads."""
    from rtdmd_bench.losses.reward_bp import check_bp_rewards
    from rtdmd_bench.rewards import RewardOptionsError, check_option_names, reward_options, reward_spec

    for name in weights:
        reward_spec(name)
    if bp:
        check_bp_rewards(list(bp))
    used = {*weights, *(bp or {})}
    for name, opts in (options or {}).items():
        if name not in used:
            raise RewardOptionsError(f"reward_options.{name}: reward {name!r} is not a training reward of this run "
                                     f"(rewards: {', '.join(sorted(used))})")
        check_option_names(name, dict(opts))
        reward_options(name, dict(opts))


def validate_prompts(data: Any, rewards: Iterable[str]) -> dict:
    """The training prompt source before any model loads: a known suite or a file, not a ``test`` suite unless
    ``data.allow_test_prompts``, and with per-prompt metadata when a reward needs it (GenEval rows for ``geneval*``).

    Returns:
        ``suites.prompt_source_info`` of the source.
    """
    from rtdmd_bench.rewards import reward_spec
    from rtdmd_bench.suites import check_training_source, suite_spec

    info = check_training_source(data.prompts, data.allow_test_prompts)
    needs = sorted({r for r in rewards if reward_spec(r).needs_metadata})
    if needs and not Path(data.prompts).is_file() and not suite_spec(data.prompts).metadata_fields:
        raise ValueError(f"rewards {needs} need per-prompt metadata, but training suite {data.prompts!r} has none "
                         f"(plain prompts); set data.prompts to a suite with their metadata (geneval-train for "
                         f"geneval_partial) or drop the rewards")
    return info


def check_prompt_metadata(source: str, metadata: Sequence[Mapping], rewards: Iterable[str]) -> None:
    """A prompt FILE's records carry metadata when a reward needs it (checked after reading, before models load)."""
    from rtdmd_bench.rewards import reward_spec

    needs = sorted({r for r in rewards if reward_spec(r).needs_metadata})
    missing = sum(1 for m in metadata if not m)
    if needs and missing:
        raise ValueError(f"rewards {needs} need per-prompt metadata, but {missing} of the {len(metadata)} prompts of "
                         f"{source!r} have none; use a .jsonl with the metadata fields (GenEval rows: tag, include)")


def validate_model(name: str) -> None:
    """Unknown model names fail with did-you-mean before anything loads."""
    from rtdmd_bench.models import MODELS

    MODELS.resolve(name)


def build_backbone(model: ModelSection, weights: str | None, device: Any) -> Backbone:
    """The image backbone of ``model`` at the training resolution."""
    from rtdmd_bench.training.image_backbone import build_image_backbone

    overrides: dict[str, Any] = {"eta": model.eta}
    if model.height:
        overrides["height"] = model.height
    if model.width:
        overrides["width"] = model.width
    return build_image_backbone(model.name, weights, device, model.generator_init, model.fake_init,
                                gradient_checkpointing=model.gradient_checkpointing, **overrides)


def build_rewards(weights: Mapping[str, float], root: str | None, device: Any,
                  options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, tuple[Any, float]]:
    """Registry rewards ``{name: (module, weight)}`` (frozen, eval mode) with their ``reward_options``."""
    from rtdmd_bench.rewards import build

    return {name: (build(name, weights=root, device=device, options=dict((options or {}).get(name) or {})), float(w))
            for name, w in weights.items()}


def check_world(batch_size: int, k: int, world: int, expected_world: int) -> None:
    """K-repeat sampling needs K | batch·world; the error names the world size the config is written for and the
    ``--nproc_per_node`` that works."""
    from math import gcd

    from rtdmd_bench.training.samplers import SamplerConfigError, check_k_repeat

    try:
        check_k_repeat(batch_size, k, world)
    except SamplerConfigError as exc:
        fits = expected_world if (batch_size * expected_world) % max(k, 1) == 0 else k // gcd(batch_size, max(k, 1))
        raise SamplerConfigError(
            f"{exc}. This config is written for {expected_world} processes (sampling.expected_world): "
            f"{batch_size}×{expected_world} = {batch_size * expected_world} images per iteration. Launch it with "
            f"`torchrun --nproc_per_node {fits} -m rtdmd_bench train ...` (any multiple of {k // gcd(batch_size, k)} "
            f"processes works), or set sampling.k / sampling.batch_size for {world}") from None
