"""The one place that converts between float images ``[B,3,H,W]`` in [0,1], uint8 arrays and PNG bytes.

Quantisation is ``round(x*255)`` (the same rule as ``rewards.base.quantize``), so a saved PNG holds exactly
the pixels the evaluation path scores.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def to_uint8(images) -> np.ndarray:
    """float ``[B,3,H,W]`` in [0,1] (torch) -> uint8 ``[B,H,W,3]`` (numpy)."""
    import torch

    with torch.no_grad():
        arr = torch.round(images.detach().float().clamp(0, 1) * 255.0).to(torch.uint8)
    return arr.permute(0, 2, 3, 1).cpu().numpy()


def png_bytes(hwc: np.ndarray) -> bytes:
    """uint8 ``[H,W,3]`` -> PNG bytes (lossless, deterministic for identical pixels)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(hwc, mode="RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def load_images(paths: list[Path]):
    """PNG files -> float ``[B,3,H,W]`` in [0,1] (all the same size)."""
    import torch
    from PIL import Image

    arrs = [np.asarray(Image.open(p).convert("RGB"), dtype=np.uint8) for p in paths]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float() / 255.0
