"""Glue shared by the recipes: backbone/reward construction and start-up validation (before any model loads)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rtdmd_bench.training.backbone import Backbone
from rtdmd_bench.training.config import ModelSection


def validate_rewards(weights: Mapping[str, float], bp: Mapping[str, float] | None = None) -> None:
    """Unknown reward names (did-you-mean) and BP on a non-differentiable reward fail here, without imports."""
    from rtdmd_bench.losses.reward_bp import check_bp_rewards
    from rtdmd_bench.rewards import reward_spec

    for name in weights:
        reward_spec(name)
    if bp:
        check_bp_rewards(list(bp))


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


def build_rewards(weights: Mapping[str, float], root: str | None, device: Any) -> dict[str, tuple[Any, float]]:
    """Registry rewards ``{name: (module, weight)}`` (frozen, eval mode)."""
    from rtdmd_bench.rewards import build

    return {name: (build(name, weights=root, device=device), float(w)) for name, w in weights.items()}
