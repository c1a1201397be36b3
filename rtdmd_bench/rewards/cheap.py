"""Cheap non-neural rewards for the embedded default and dry runs."""

from __future__ import annotations

import io

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput

JPEG_QUALITY = 95  # DDPO's setting


class JpegCompressibility(Reward):
    """DDPO's compressibility reward: ``-(JPEG size in kB)`` at quality 95 (higher = more compressible).

    Not differentiable (the JPEG encoder is a PIL call). Images ``[B,3,H,W]`` -> scores ``[B]``.
    """

    spec = REWARDS.spec("jpeg_compressibility")

    def score(self, images, prompts, metadata):
        from PIL import Image

        arr = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        sizes = []
        for a in arr:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="JPEG", quality=JPEG_QUALITY)
            sizes.append(buf.tell() / 1000.0)
        scores = -torch.tensor(sizes, dtype=torch.float32)
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool))


class Saturation(Reward):
    """Mean HSV saturation ``mean((max_c - min_c) / max_c)`` over pixels (0 where max_c = 0), in [0,1].

    Differentiable almost everywhere (max/min subgradients). Images ``[B,3,H,W]`` -> scores ``[B]``.
    """

    spec = REWARDS.spec("saturation")

    def score(self, images, prompts, metadata):
        mx = images.amax(dim=1)
        mn = images.amin(dim=1)
        sat = torch.where(mx > 1e-6, (mx - mn) / mx.clamp_min(1e-6), torch.zeros_like(mx))
        scores = sat.flatten(1).mean(dim=1)
        return RewardOutput(scores=scores, valid=torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device))
