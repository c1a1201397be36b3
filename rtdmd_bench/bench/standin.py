"""A stand-in for a GPU generator: photo-like images at a fixed, GPU-like rate while the CPU stays idle.

``rtdmd-bench eval --model rtdmd_bench.bench.standin:StandInGenerator ...`` runs the real evaluation path on it,
so the harness's own cost (quantisation, scoring, PNG encode/hash/write, journal) is measured at production
resolution without a GPU. Each ``generate`` call returns after ``B * seconds_per_image`` of wall time from its
start and spends that time waiting (as a host thread waits on a CUDA sync), not computing: the harness gets
every core, exactly as on a GPU box. Default rate: 0.3 s per 1024x1024 image (FLUX.2-klein-4B, 4 steps, on an
H200: ~1.6e14 FLOP at ~50% of 790 bf16 TFLOP/s), scaled with the pixel count; ``$RTDMD_STANDIN_S_PER_IMAGE``
overrides it.

Images are realistic for the PNG encoder: a photograph (matplotlib's sample ``grace_hopper.jpg``) resized to
the run's resolution, flipped/tinted per bank entry, with multi-octave texture, then rolled per seed. A
1024x1024 image is ~1.7 MB at zlib level 1 and ~1.55 MB at level 6, in the range of real 1024x1024 diffusion
outputs. Image i depends only on ``seeds[i]``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from rtdmd_bench.models.spec import ModelSpec

BANK_SIZE = 4
TEXTURE_AMPLITUDE = 0.015  # per-pixel detail: real diffusion outputs are not smooth upscales
REFERENCE_S_PER_IMAGE = 0.3  # at 1024x1024
_banks: dict[tuple[int, int], Any] = {}
_bank_lock = threading.Lock()


def seconds_per_image(height: int, width: int) -> float:
    env = os.environ.get("RTDMD_STANDIN_S_PER_IMAGE")
    return float(env) if env else REFERENCE_S_PER_IMAGE * height * width / (1024 * 1024)


def _photo(height: int, width: int):
    """The sample photograph as float ``[3,H,W]`` in [0,1] (bicubic resize)."""
    import matplotlib.cbook
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        arr = np.array(img.convert("RGB"), dtype=np.uint8)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    return F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def image_bank(height: int, width: int):
    """``[BANK_SIZE, 3, H, W]`` distinct photo-like images (built once per resolution and process)."""
    import torch
    import torch.nn.functional as F

    with _bank_lock:
        if (height, width) not in _banks:
            photo = _photo(height, width)
            g = torch.Generator().manual_seed(0)
            bank = []
            for i in range(BANK_SIZE):
                x = photo.flip(-1) if i % 2 else photo
                tint = 0.85 + 0.3 * torch.rand(3, 1, 1, generator=g)
                detail = torch.zeros(1, 3, height, width)
                for cells, weight in ((8, 1.0), (32, 0.6), (128, 0.4), (512, 0.3), (1024, 0.25)):
                    noise = torch.randn(1, 3, min(cells, height), min(cells, width), generator=g)
                    detail += weight * F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False)
                bank.append((x * tint + TEXTURE_AMPLITUDE * detail[0]).clamp(0, 1))
            _banks[(height, width)] = torch.stack(bank)
        return _banks[(height, width)]


class StandInGenerator:
    """Generator plugin with the harness's generator interface (``spec``, ``generate``, ``describe``). Its defaults
    live in ``DEFAULT_SPEC``, not in a class-level ``spec``: a plugin with a class-level spec must belong to a
    registered generator family (``models.resolve_spec``), and this one is not a diffusers architecture."""

    DEFAULT_SPEC = ModelSpec(name="standin", target="rtdmd_bench.bench.standin:StandInGenerator", family="standin",
                     description="GPU stand-in: photo-like images at a fixed rate, CPU idle while it works",
                     height=1024, width=1024, steps=4, eta=0.0, dtype="float32", tiny=True)

    def __init__(self, spec: ModelSpec, device: Any = "cpu"):
        self.spec, self.device = spec, device
        self.seconds_per_image = seconds_per_image(spec.height, spec.width)
        self.bank = image_bank(spec.height, spec.width)

    @classmethod
    def from_weights(cls, spec: ModelSpec | None, root: Any = None, device: Any = "cpu", dtype: Any = None,
                     lora: Sequence[str] = (), **overrides: Any) -> StandInGenerator:
        import dataclasses

        spec = dataclasses.replace(spec or cls.DEFAULT_SPEC, **overrides)
        return cls(spec, device)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], **_: Any):
        """float32 ``[B,3,H,W]`` in [0,1], returned ``B * seconds_per_image`` after the call started."""
        import torch

        start = time.perf_counter()
        rows = []
        for s in seeds:
            s = int(s)
            base = self.bank[s % BANK_SIZE]
            rows.append(torch.roll(base, shifts=((s >> 8) % self.spec.height, (s >> 24) % self.spec.width), dims=(1, 2)))
        images = torch.stack(rows).to(self.device)
        remaining = start + len(seeds) * self.seconds_per_image - time.perf_counter()
        if remaining > 0:
            time.sleep(remaining)  # "the GPU is busy": the host thread waits, every core is free
        return images

    def describe(self) -> dict[str, Any]:
        s = self.spec
        return {"name": s.name, "family": s.family, "base": "", "revision": "", "weights_dir": "", "lora": [],
                "nfe": s.steps, "steps": s.steps, "step_list": None, "sigmas": [], "eta": 0.0, "guidance": 1.0,
                "height": s.height, "width": s.width, "dtype": "float32", "sampler": "standin", "tiny": True,
                "seconds_per_image": self.seconds_per_image}
