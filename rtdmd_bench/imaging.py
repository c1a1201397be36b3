"""The one place that converts between float images ``[B,3,H,W]`` in [0,1], uint8 arrays and PNG bytes.

Quantisation is ``round(x*255)`` (the same rule as ``rewards.base.quantize``), so a saved PNG holds exactly
the pixels the evaluation path scores. Both the fresh path (``quantize_batch``) and the cached path (``load_images``)
hand the scorers the same tensor: contiguous float32 ``[B,3,H,W]`` holding ``k/255`` for the PNG's byte ``k``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# zlib level of every PNG the harness writes. Measured on a 1024x1024 photo-like image (benchmarks/
# test_png_bench.py; README "Performance"): level 1 is ~2x smaller than level 0 (stored) for ~1.5-2x its
# encode time, and levels 6-9 save a further ~10% of bytes for 3-5x the time. Pixels never depend on it.
PNG_COMPRESS_LEVEL = 1


def quantize_batch(images):
    """float ``[B,3,H,W]`` in [0,1] -> ``(scored, pixels)``: ``scored`` float32 ``[B,3,H,W]`` = ``round(x*255)/255``
    on the images' device, ``pixels`` uint8 ``[B,H,W,3]`` on the CPU (the PNG bytes' pixels).

    One temporary, rounded in place: no uint8 -> float re-conversion (the scored values ``k/255`` are computed
    from the same rounded ``k``). The input is not modified.
    """
    import torch

    with torch.inference_mode():
        k = images.detach().float().clamp(0, 1).mul_(255.0).round_()  # integers 0..255, float32
        pixels = k.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return k.div_(255.0), pixels


def to_uint8(images) -> np.ndarray:
    """float ``[B,3,H,W]`` in [0,1] (torch) -> uint8 ``[B,H,W,3]`` (numpy)."""
    return quantize_batch(images)[1]


def png_bytes(hwc: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """uint8 ``[H,W,3]`` -> PNG bytes (lossless, deterministic for identical pixels and level; Pillow releases
    the GIL while compressing, so several threads encode in parallel)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(hwc, mode="RGB").save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def read_pixels(path: Path) -> np.ndarray:
    """A PNG file -> uint8 ``[H,W,3]``."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def pixels_to_float(pixels: np.ndarray):
    """uint8 ``[B,H,W,3]`` -> contiguous float32 ``[B,3,H,W]`` = ``k/255`` (what ``quantize_batch`` gives the scorers)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def load_images(paths: list[Path]):
    """PNG files -> float ``[B,3,H,W]`` in [0,1] (all the same size), laid out as ``quantize_batch`` lays them out."""
    return pixels_to_float(np.stack([read_pixels(p) for p in paths]))
