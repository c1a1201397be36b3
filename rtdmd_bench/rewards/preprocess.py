"""The one CLIP-style image preprocessing of every neural scorer, and the per-prompt text-feature cache.

Two paths produce the model input ``[B,3,S,S]`` (normalised) from images ``[B,3,H,W]`` in ``[0,1]``:

- ``clip_preprocess`` (tensor, differentiable): ``F.interpolate(bicubic, antialias=True)`` then centre crop
  (``mode="crop"``: shortest side -> ``size``, as the CLIP/BLIP processors) or zero padding to a square
  (``mode="pad"``: longest side -> ``size``, as HPSv2's ``ResizeMaxSize``), then ``(x - mean) / std``.
  Antialiasing matters: without it a 1024->224 resize differs from PIL by ~0.34 normalised units.
- ``pil_clip_preprocess`` (reference, evaluation): the same geometry through PIL bicubic on uint8 images,
  i.e. what the HF processors / ``clip.load`` / ImageReward's ``_transform`` compute on a saved PNG.

Geometry (shared by both paths, equal to transformers' ``get_resize_output_image_size`` and
``center_crop``): crop mode resizes to ``(size, int(size * long / short))``, crops at
``top = (h - S) // 2``; pad mode resizes to ``round(side * size / max(h, w))`` and pads
``(S - w') // 2`` on the left/top, the rest on the right/bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PIL_BICUBIC = 3  # PIL.Image.BICUBIC, the ``resample`` value of every CLIP-family processor config


@dataclass(frozen=True)
class PreprocessConfig:
    """Geometry and normalisation of a scorer's image input.

    Attributes:
        size: target of the resize (shortest side in crop mode, longest side in pad mode).
        crop: side of the square model input ``S``.
        mode: ``"crop"`` (centre crop) or ``"pad"`` (zero padding to a square).
        mean / std: per-channel normalisation applied after resize (to values in [0,1]).
    """

    size: int = 224
    crop: int = 224
    mode: str = "crop"
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __post_init__(self):
        if self.mode not in ("crop", "pad"):
            raise ValueError(f"preprocess mode must be 'crop' or 'pad', got {self.mode!r}")
        if self.mode == "pad" and self.crop != self.size:
            raise ValueError("pad mode needs crop == size (the padded square is the model input)")


def resized_hw(h: int, w: int, cfg: PreprocessConfig) -> tuple[int, int]:
    """Output ``(height, width)`` of the resize step for an ``h x w`` image."""
    if cfg.mode == "pad":
        scale = cfg.size / max(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))
    if h <= w:
        return cfg.size, int(cfg.size * w / h)
    return int(cfg.size * h / w), cfg.size


def _crop_or_pad_box(h: int, w: int, cfg: PreprocessConfig) -> tuple[int, int]:
    """Top-left offset of the crop (crop mode, >= 0) or of the image inside the pad canvas (pad mode)."""
    return abs(h - cfg.crop) // 2, abs(w - cfg.crop) // 2


def _normalise(x: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    mean = torch.tensor(cfg.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def clip_preprocess(images: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """Differentiable preprocessing. ``[B,3,H,W]`` in [0,1] -> ``[B,3,S,S]`` normalised, ``S = cfg.crop``.

    Bicubic with ``antialias=True`` (the PIL-equivalent filter); values are not clamped after the resize so
    the gradient stays defined at every pixel (PIL clamps to uint8; the difference is ~1e-3).
    """
    h, w = images.shape[-2:]
    nh, nw = resized_hw(h, w, cfg)
    x = images
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
    top, left = _crop_or_pad_box(nh, nw, cfg)
    if cfg.mode == "crop":
        x = x[..., top:top + cfg.crop, left:left + cfg.crop]
    else:
        x = F.pad(x, (left, cfg.crop - nw - left, top, cfg.crop - nh - top), value=0.0)
    return _normalise(x, cfg)


def pil_clip_preprocess(images: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """Reference (evaluation) preprocessing through PIL bicubic on uint8 images.

    ``[B,3,H,W]`` in [0,1] -> ``[B,3,S,S]`` normalised, float32, on the input's device. Not differentiable.
    """
    import numpy as np
    from PIL import Image

    arr = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for a in arr:
        h, w = a.shape[:2]
        nh, nw = resized_hw(h, w, cfg)
        img = Image.fromarray(a).resize((nw, nh), resample=Image.BICUBIC)
        top, left = _crop_or_pad_box(nh, nw, cfg)
        if cfg.mode == "crop":
            img = img.crop((left, top, left + cfg.crop, top + cfg.crop))
        else:
            canvas = Image.new("RGB", (cfg.crop, cfg.crop), (0, 0, 0))
            canvas.paste(img, (left, top))
            img = canvas
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1))
    return _normalise(torch.stack(out).to(images.device), cfg)


def preprocess_config_from_processor(config: dict) -> PreprocessConfig:
    """``PreprocessConfig`` from an HF ``preprocessor_config.json`` dict (legacy int sizes or v5 dicts).

    Raises:
        ValueError: a resample filter other than bicubic (our tensor path only reproduces bicubic).
    """
    resample = config.get("resample", PIL_BICUBIC)
    if resample != PIL_BICUBIC:
        raise ValueError(f"preprocessor_config.json has resample={resample}; only bicubic ({PIL_BICUBIC}) is supported")
    size = config.get("size", 224)
    if isinstance(size, dict):
        size = size.get("shortest_edge", size.get("height"))
    crop = config.get("crop_size", size)
    if isinstance(crop, dict):
        crop = crop["height"]
    return PreprocessConfig(size=int(size), crop=int(crop), mode="crop",
                            mean=tuple(config.get("image_mean", CLIP_MEAN)), std=tuple(config.get("image_std", CLIP_STD)))


class TextFeatureCache:
    """Features computed once per unique prompt (RL and multi-image suites repeat prompts).

    ``cache(prompts)`` -> ``[B, ...]``: encodes only the prompts not seen before, in one batched call of
    ``encode(list[str]) -> [U, ...]``. Features are computed without grad and outside inference mode, so
    they are usable on both the evaluation path (inference mode) and the gradient path. The owning
    ``Reward`` clears the cache whenever it is moved or cast (``Reward._apply``).
    """

    def __init__(self, encode: Callable[[list[str]], torch.Tensor], max_items: int = 65536):
        self._encode = encode
        self._store: dict[str, torch.Tensor] = {}
        self.max_items = max_items
        self.encoded = 0  # number of prompts actually encoded (tests and benchmarks read it)

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(p for p in prompts if p not in self._store))
        fresh: dict[str, torch.Tensor] = {}
        if missing:
            with torch.inference_mode(False), torch.no_grad():
                fresh = dict(zip(missing, self._encode(missing)))
            self.encoded += len(missing)
        out = torch.stack([fresh[p] if p in fresh else self._store[p] for p in prompts])
        if len(self._store) + len(fresh) > self.max_items:
            self._store.clear()  # simple bound: RL prompt streams are unbounded
        self._store.update(fresh)
        return out
