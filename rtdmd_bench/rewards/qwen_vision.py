"""Qwen2-VL-family image input as differentiable tensor ops: ``smart_resize`` geometry and patch flattening.

Qwen2-VL (and Qwen2.5/3-VL) processors resize an image to ``(h', w')``, multiples of ``factor = patch *
merge``, with ``min_pixels <= h'·w' <= max_pixels`` and the aspect ratio kept as closely as possible
(``smart_resize``); rescale to [0,1]; normalise; then cut ``patch x patch`` tiles, duplicate each frame
``temporal`` times, and flatten each tile as ``[C, T, p, p]``, tiles ordered by
``(h/merge, w/merge, merge, merge)`` so that the vision merger's 2x2 groups are contiguous. Here the same
layout is built with torch ops so gradients reach the pixels; a test checks it equals transformers'
``Qwen2VLImageProcessor`` output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL target size: both sides multiples of ``factor``, ``min_pixels <= h'w' <= max_pixels``.

    ``h' = round(h/f)·f`` (at least ``f``); if ``h'w' > max``: ``beta = sqrt(hw/max)``, ``h' = floor(h/beta/f)·f``;
    if ``h'w' < min``: ``beta = sqrt(min/(hw))``, ``h' = ceil(h·beta/f)·f`` (same for ``w``).
    A 1024x1024 image at HPSv3's 256·28·28 budget becomes 448x448.
    """
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of a {height}x{width} image exceeds 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_tensor(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Differentiable bicubic resize with antialiasing (torchvision's tensor ``resize`` on floats), no clamp."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)


def resize_pil(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Reference resize: PIL bicubic on the uint8 image (what a processor fed a PIL image computes).

    ``[B,3,H,W]`` in [0,1] -> ``[B,3,h',w']`` in [0,1] (multiples of 1/255), not differentiable.
    """
    import numpy as np
    from PIL import Image

    arr = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = [np.asarray(Image.fromarray(a).resize((size[1], size[0]), resample=Image.BICUBIC), dtype=np.float32)
           for a in arr]
    return torch.from_numpy(np.stack(out) / 255.0).permute(0, 3, 1, 2).to(images.device)


def flatten_patches(pixels: torch.Tensor, patch: int, merge: int, temporal: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised ``[B,C,H,W]`` (``H, W`` multiples of ``patch·merge``) -> ``([B·gh·gw, C·T·p·p], grid_thw [B,3])``.

    Row ``(b, i, j, m, n)`` holds tile ``(i·merge+m, j·merge+n)`` of image ``b`` as ``[C, T, p, p]`` with the
    frame repeated ``T`` times (a still image is a ``T``-frame clip of itself).
    """
    b, c, h, w = pixels.shape
    gh, gw = h // patch, w // patch
    x = pixels.reshape(b, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # b, gh/m, gw/m, m, m, c, p, p
    x = x.unsqueeze(6).expand(-1, -1, -1, -1, -1, -1, temporal, -1, -1)
    flat = x.reshape(b * gh * gw, c * temporal * patch * patch)
    grid = torch.tensor([[1, gh, gw]] * b, dtype=torch.long, device=pixels.device)
    return flat, grid
