"""The diffusers generator adapters (``rtdmd_bench.models``) seen through the ``Backbone`` protocol."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rtdmd_bench.training.backbone import Networks
from rtdmd_bench.training.lora import enable_gradient_checkpointing, lora_targets


class ImageBackbone:
    """Backbone over a ``FlowGenerator`` (teacher/base model) and optional separate generator/fake inits.

    Args:
        base: adapter of the pretrained (teacher) model; its encoders, VAE and schedule are used for all roles.
        generator_init: adapter whose transformer initialises the generator (FLUX.2: the distilled klein model).
        fake_init: adapter whose transformer initialises the fake score (default: the base).
        gradient_checkpointing: ``model.gradient_checkpointing``: the generator and fake-score copies returned by
            ``networks()`` recompute block activations in backward (the frozen teacher only runs under no_grad).
    """

    def __init__(self, base: Any, generator_init: Any = None, fake_init: Any = None,
                 gradient_checkpointing: bool = False) -> None:
        self.base, self._gen_init, self._fake_init = base, generator_init, fake_init
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.family = base.spec.family
        self.latent_shape = tuple(base.latent_shape)
        self.sigmas = torch.tensor(base.sigmas, dtype=torch.float32)
        self.eta = float(base.spec.eta)
        self.device = torch.device(base.device)
        self.lora_targets = lora_targets(self.family, base.transformer)

    def networks(self) -> Networks:
        teacher = self.base.transformer
        gen = copy.deepcopy((self._gen_init or self.base).transformer)
        fake = copy.deepcopy((self._fake_init or self.base).transformer)
        if self.gradient_checkpointing:  # on the copies only: the shared base transformer (teacher) is untouched
            enable_gradient_checkpointing(gen)
            enable_gradient_checkpointing(fake)
        return Networks(teacher=teacher, generator=gen, fake=fake)

    def encode(self, prompts: Sequence[str]) -> Any:
        return self.base.encode(prompts)

    def encode_uncond(self, n: int) -> Any:
        return self.base.encode_uncond(n)

    def velocity(self, net: nn.Module, x: Tensor, sigma: Tensor, cond: Any, guidance: float = 1.0,
                 uncond: Any = None) -> Tensor:
        """fp32 velocity; CFG (or FLUX.1's distilled guidance) is the adapter's, with its own empty-prompt branch."""
        return self.base.predict_velocity(x, sigma, cond, guidance, transformer=net).float()

    def decode(self, latents: Tensor) -> Tensor:
        return self.base.decode(latents)


def build_image_backbone(model: str, weights: str | None, device: Any, generator_model: str | None = None,
                         fake_model: str | None = None, gradient_checkpointing: bool = False,
                         **overrides: Any) -> ImageBackbone:
    """Load the adapters (``overrides``: ModelSpec fields such as height/width/eta) and wrap them.

    ``gradient_checkpointing`` is ``ModelSection.gradient_checkpointing`` (see ``ImageBackbone``)."""
    from rtdmd_bench.models import build

    base = build(model, weights=weights, device=device, **overrides)
    gen = build(generator_model, weights=weights, device=device, **overrides) if generator_model else None
    fake = build(fake_model, weights=weights, device=device, **overrides) if fake_model else None
    return ImageBackbone(base, gen, fake, gradient_checkpointing=gradient_checkpointing)
