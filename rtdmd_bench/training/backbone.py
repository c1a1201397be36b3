"""The backbone protocol: everything a trainer recipe needs from a generator family, and nothing more.

Recipes (``trainers/*.py``) are written against ``Backbone`` only, so the image adapters
(``ImageBackbone`` in ``rtdmd_bench.training.image_backbone``) and the 2-D toy world plug in alike.
A backbone is a plain object; implement the attributes and methods below (no base class needed)::

    class ToyBackbone:
        family = "toy"                      # a name; image backbones use a registered FamilySpec
        lora_targets = None                 # None: train every parameter of generator/fake (no LoRA)
        latent_shape = (2,)                 # per-sample shape of x; x is [B, *latent_shape]
        sigmas = torch.tensor([1.0, .9, .75, .5, 0.0])  # [N+1] fp32, descending, sigmas[-1] == 0
        eta = 0.9                           # CPS η of the rollouts
        device = torch.device("cpu")

        def networks(self) -> Networks:     # FRESH modules on self.device (recipes freeze the teacher)
            return Networks(teacher=mlp_teacher, generator=copy.deepcopy(gen_init), fake=copy.deepcopy(mlp_teacher))
        def encode(self, prompts):          # -> cond for velocity(); any object, batch-aligned with prompts
            return torch.tensor([self.class_of[p] for p in prompts])
        def encode_uncond(self, n):         # -> cond of the empty prompt, n copies
            return torch.full((n,), -1)
        def velocity(self, net, x, sigma, cond, guidance=1.0, uncond=None):
            # x [B,*latent_shape]; sigma [B] fp32 in [0,1] (NOT 1000σ); returns v like x (eq. 1.1 convention:
            # x_σ = (1−σ)x0 + σε, v = ε − x0). guidance != 1 with uncond: classifier-free guidance
            # v_u + w(v_c − v_u) (or the family's distilled-guidance input); generator/fake always get 1.0.
            return net(x, sigma, cond)
        def decode(self, latents):          # -> what the rewards score (images [B,3,H,W] in [0,1]); keep grad
            return latents

Rewards are callables ``reward(images, prompts, metadata) -> RewardOutput`` (``.scores`` ``[B]``); a toy passes
its own via the recipes' ``build(..., rewards={name: (module, weight)})``.

All randomness of a recipe comes from ``SampleRNG`` (CPU generators keyed by run seed, step and global sample
index; per sample, or per block of the global batch with ``run.rng_block``), so a result does not depend on
world size or per-rank batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from rtdmd_bench.seeds import key_seed


@dataclass
class Networks:
    """The three roles (§3.1): frozen ``teacher``; trainable ``generator`` and ``fake`` (fresh copies)."""

    teacher: nn.Module
    generator: nn.Module
    fake: nn.Module


@runtime_checkable
class Backbone(Protocol):
    """What recipes use; see the module docstring for the exact contract and a toy example."""

    family: str
    lora_targets: Sequence[str] | None
    latent_shape: tuple[int, ...]
    sigmas: Tensor
    eta: float
    device: torch.device

    def networks(self) -> Networks: ...

    def encode(self, prompts: Sequence[str]) -> Any: ...

    def encode_uncond(self, n: int) -> Any: ...

    def velocity(self, net: nn.Module, x: Tensor, sigma: Tensor, cond: Any, guidance: float = 1.0,
                 uncond: Any = None) -> Tensor: ...

    def decode(self, latents: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class SampleRNG:
    """Counter-based randomness: every draw is a pure function of ``(seed, step, stream, sample key)``.

    ``keys`` are the GLOBAL indices of the samples in the step's batch, so rank r of a world of W draws exactly
    what a single process with the whole batch draws for the same samples (the DDP-equivalence property).

    Two layouts, both world-size independent:

    * ``block == 0`` (default): one generator per sample, seeded from ``(seed, step, stream, key)``. Exact per
      sample whatever the batch composition, but one ``torch.Generator`` per row and draw.
    * ``block == B > 0``: keys are grouped in blocks ``key // B`` of the global batch; one generator per block,
      seeded from ``(seed, step, stream, "block", key // B)``, draws the whole ``[B, *shape]`` block and a rank
      keeps rows ``key % B``. Every rank draws the same block, so the values still depend only on the global
      key, while a draw costs one generator per call instead of one per sample. Use B = the global batch of one
      iteration (``world × per-rank batch``, constant for a given global batch); the values differ from the
      per-sample layout, so resume needs the same ``block``.
    """

    seed: int
    block: int = 0

    def generator(self, step: int, stream: str, key: int = -1) -> torch.Generator:
        return torch.Generator().manual_seed(key_seed(self.seed, step, stream, key))

    def _blocks(self, step: int, stream: str, keys: Sequence[int], draw) -> Tensor:
        """Rows ``keys`` of the per-block draws ``draw(generator) -> [block, ...]`` (in key order)."""
        keys = [int(k) for k in keys]
        ids = sorted({k // self.block for k in keys})
        blocks = {b: draw(torch.Generator().manual_seed(key_seed(self.seed, step, stream, "block", b))) for b in ids}
        if len(ids) == 1:  # the common case: one iteration's rows of one block
            lo = keys[0] % self.block
            if keys == list(range(keys[0], keys[0] + len(keys))):  # a rank's contiguous slice: no index tensor
                return blocks[ids[0]][lo:lo + len(keys)]
            return blocks[ids[0]][torch.tensor([k % self.block for k in keys])]
        return torch.stack([blocks[k // self.block][k % self.block] for k in keys])

    def randn(self, step: int, stream: str, keys: Sequence[int], shape: Sequence[int], device: Any) -> Tensor:
        """``[len(keys), *shape]`` standard normals (fp32, on ``device``); row i depends only on ``keys[i]``."""
        if self.block:
            return self._blocks(step, stream, keys,
                                lambda g: torch.randn((self.block, *shape), generator=g)).to(device)
        rows = [torch.randn(tuple(shape), generator=self.generator(step, stream, int(k))) for k in keys]
        return torch.stack(rows).to(device)

    def rand(self, step: int, stream: str, keys: Sequence[int], device: Any = "cpu") -> Tensor:
        """``[len(keys)]`` uniforms in [0, 1); row i depends only on ``keys[i]``."""
        if self.block:
            return self._blocks(step, stream, keys, lambda g: torch.rand(self.block, generator=g)).to(device)
        return torch.stack([torch.rand((), generator=self.generator(step, stream, int(k))) for k in keys]).to(device)

    def randint(self, step: int, stream: str, low: int, high: int, key: int = -1) -> int:
        """One integer in ``[low, high)`` shared by every sample (and rank) of the step."""
        return int(torch.randint(low, high, (), generator=self.generator(step, stream, key)))
