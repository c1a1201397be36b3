"""The one place that converts between float images ``[B,3,H,W]`` in [0,1], uint8 arrays and PNG bytes.

Quantisation is ``round(x*255)`` (the same rule as ``rewards.base.quantize``), so a saved PNG holds exactly
the pixels the evaluation path scores. Both the fresh path (``quantize_batch``) and the cached path (``load_images``)
hand the scorers the same tensor: contiguous float32 ``[B,3,H,W]`` holding ``k/255`` for the PNG's byte ``k``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# How every PNG the harness writes is compressed: the Sub filter on every row, then zlib at level 1 with the
# run-length strategy. Chosen by measurement on a 1024x1024 photo-like image (benchmarks/test_png_bench.py,
# README "Performance"): 53 ms of CPU and 1.72 MB, against Pillow's 130 ms / 1.75 MB at compress_level 1,
# ~90 ms / 3.1 MB at level 0 and 450-950 ms / 1.5-1.6 MB at level 6. Pixels never depend on it.
PNG_COMPRESS_LEVEL = 1
PNG_FORMAT = {"encoder": "rtdmd_bench.imaging.png_bytes", "filter": "sub", "zlib_level": PNG_COMPRESS_LEVEL,
              "zlib_strategy": "rle"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def _chunk(tag: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def png_bytes(hwc: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """uint8 ``[H,W,3]`` -> PNG bytes (8-bit RGB, lossless, deterministic for identical pixels and zlib build).

    Every scanline uses PNG filter 1 (Sub: each byte minus the byte 3 to its left, mod 256) and the stream is
    deflated with ``Z_RLE`` at ``level`` (0 = stored). numpy and zlib release the GIL, so several threads
    encode in parallel.
    """
    import struct
    import zlib

    if hwc.dtype != np.uint8 or hwc.ndim != 3 or hwc.shape[2] != 3:
        raise ValueError(f"png_bytes needs uint8 [H,W,3], got {hwc.dtype} {hwc.shape}")
    h, w, _ = hwc.shape
    flat = np.ascontiguousarray(hwc).reshape(h, w * 3)
    rows = np.empty((h, 1 + w * 3), dtype=np.uint8)
    rows[:, 0] = 1  # filter type Sub
    rows[:, 1:4] = flat[:, :3]
    np.subtract(flat[:, 3:], flat[:, :-3], out=rows[:, 4:])  # uint8 arithmetic wraps mod 256, as PNG specifies
    z = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = z.compress(rows) + z.flush()
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit depth, colour type 2 (RGB), no interlace
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b"")))


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
