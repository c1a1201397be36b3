"""The reward contract shared by evaluation and training.

A reward is an ``nn.Module`` with a class-level ``spec``. ``forward(images, prompts, metadata=None)``
takes images float32 ``[B,3,H,W]`` RGB in ``[0,1]`` and returns ``RewardOutput(scores [B], valid [B] bool,
parts {name: [B]})`` in the paper's raw units. Under ``torch.is_grad_enabled()`` and ``spec.differentiable``
the score keeps the graph to the pixels (reward back-propagation); otherwise evaluation first quantises to
uint8 exactly like the saved PNG (``quantize``) so scoring an in-memory image equals scoring its file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from rtdmd_bench.rewards.preprocess import TextFeatureCache
from rtdmd_bench.rewards.spec import RewardSpec


class RewardInputError(ValueError):
    """Images or prompts that violate the reward contract."""


@dataclass
class RewardOutput:
    """Per-image scores. ``scores``/``valid`` are ``[B]``; ``parts`` holds named ``[B]`` sub-scores;
    ``extras`` holds per-image non-tensor details (e.g. GenEval reasons) as lists of length B."""

    scores: torch.Tensor
    valid: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, list[Any]] = field(default_factory=dict)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """``round(x*255)/255``: the exact values a saved 8-bit PNG holds. ``[B,3,H,W]`` -> same shape.

    One temporary, then in place (a 1024x1024 batch is tens of MB: every fresh buffer costs page faults).
    """
    return images.clamp(0, 1).mul_(255.0).round_().div_(255.0)


def check_inputs(images: torch.Tensor, prompts: Sequence[str] | None, metadata: Sequence[Mapping] | None,
                 spec: RewardSpec) -> None:
    """Raise RewardInputError on anything outside the contract (shape, range, NaN, lengths)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise RewardInputError(f"{spec.name}: images must be a float tensor [B,3,H,W], got {shape}")
    if not images.is_floating_point():
        raise RewardInputError(f"{spec.name}: images must be float in [0,1], got dtype {images.dtype}")
    if images.shape[0] == 0:
        raise RewardInputError(f"{spec.name}: empty batch")
    with torch.no_grad():
        lo, hi = (float(v) for v in torch.aminmax(images))  # one pass; NaN propagates into both
        if math.isnan(lo) or math.isnan(hi):
            raise RewardInputError(f"{spec.name}: images contain NaN")
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise RewardInputError(f"{spec.name}: images must be in [0,1], got range [{lo:.4g}, {hi:.4g}]")
    b = images.shape[0]
    if spec.needs_prompt and (prompts is None or len(prompts) == 0):
        raise RewardInputError(f"{spec.name}: needs one prompt per image, got none")
    if prompts is not None and len(prompts) != b:  # also for prompt-free scorers: a caller bug either way
        raise RewardInputError(f"{spec.name}: {b} images but {len(prompts)} prompts")
    if prompts is not None and not all(isinstance(p, str) for p in prompts):
        raise RewardInputError(f"{spec.name}: prompts must be strings")
    if spec.needs_metadata:
        if metadata is None or len(metadata) != b:
            n = 0 if metadata is None else len(metadata)
            raise RewardInputError(f"{spec.name}: needs one metadata record per image, got {n} for {b} images")
    elif metadata is not None and len(metadata) != b:
        raise RewardInputError(f"{spec.name}: {b} images but {len(metadata)} metadata records")


class Reward(nn.Module):
    """Base class: subclasses set ``spec`` and implement ``score(images, prompts, metadata)``.

    ``forward`` validates inputs, quantises on the evaluation path and marks non-finite scores invalid.
    Parameters are frozen and the module stays in eval mode (dropout heads).
    """

    spec: ClassVar[RewardSpec]

    def forward(self, images: torch.Tensor, prompts: Sequence[str] | None = None,
                metadata: Sequence[Mapping] | None = None) -> RewardOutput:
        check_inputs(images, prompts, metadata, self.spec)
        grad_path = torch.is_grad_enabled() and self.spec.differentiable and images.requires_grad
        prompts = list(prompts) if prompts is not None else None
        metadata = list(metadata) if metadata is not None else None
        if grad_path:
            out = self.score(images.float(), prompts, metadata)
        else:
            with torch.inference_mode():
                out = self.score(quantize(images.detach()).float(), prompts, metadata)
        finite = torch.isfinite(out.scores.detach())
        out.valid = out.valid & finite
        return out

    @property
    def grad_path(self) -> bool:
        """True inside ``score`` when the caller wants gradients (set per call by ``forward``)."""
        return torch.is_grad_enabled() and not torch.is_inference_mode_enabled()

    def score(self, images: torch.Tensor, prompts: list[str] | None, metadata: list[Mapping] | None) -> RewardOutput:
        raise NotImplementedError

    def _apply(self, fn, recurse=True):
        # Cached text features live outside the parameter tree: drop them on .to()/.half() so they are
        # recomputed on the new device/dtype instead of silently mixing precisions.
        for value in vars(self).values():
            if isinstance(value, TextFeatureCache):
                value.clear()
        return super()._apply(fn, recurse)

    def freeze(self) -> Reward:
        """Freeze parameters and switch to eval mode; returns self."""
        self.requires_grad_(False)
        self.eval()
        return self

    def train(self, mode: bool = True) -> Reward:  # rewards never leave eval mode
        return super().train(False)
