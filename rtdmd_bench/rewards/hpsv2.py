"""HPSv2.1: raw cosine of open_clip ViT-H-14 fine-tuned on HPDv2 (``HPS_v2.1_compressed.pt``).

``score = <E_img/|E_img|, E_txt/|E_txt|>`` -- no logit scale (papers: 0.27-0.35). Preprocessing follows
HPSv2's ``ResizeMaxSize(224)``: longest side -> 224 with bicubic, zero padding to a square, then OpenAI
normalisation. HPSv2 itself resizes a float tensor; we pin ``antialias=True`` (torchvision >= 0.17 default;
the 2023 HPSv2 environment did not antialias, so 1024^2 scores differ slightly from that environment).
Evaluation and gradient paths therefore share the tensor preprocessing; evaluation quantises first.
Weights: ``hpsv2/HPS_v2.1_compressed.pt`` (``{"state_dict": {"module."+k: fp16}}``) and optionally
``hpsv2/open_clip_config.json``; without it the built-in ``ViT-H-14`` architecture is used.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.open_clip_loading import (
    load_open_clip,
    preprocess_config,
    unit_image_features,
    unit_text_features,
)
from rtdmd_bench.rewards.preprocess import PreprocessConfig, TextFeatureCache, clip_preprocess
from rtdmd_bench.weights import require_files

CHECKPOINT = "hpsv2/HPS_v2.1_compressed.pt"
ARCHITECTURE = "ViT-H-14"


class HPSv2(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B prompts -> cosine ``[B]``."""

    spec = REWARDS.spec("hpsv2")

    def __init__(self, model: nn.Module, tokenizer, preprocess: PreprocessConfig):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.text_cache = TextFeatureCache(self._encode_prompts)

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> HPSv2:
        (ckpt,) = require_files(root, [CHECKPOINT], cls.spec.name)
        model, tokenizer, model_cfg, pre_cfg = load_open_clip(ckpt, ARCHITECTURE)
        return cls(model, tokenizer, preprocess_config(model_cfg, pre_cfg, mode="pad"))

    def _encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        return unit_text_features(self.model, self.tokenizer(prompts))

    def score(self, images, prompts, metadata):
        img = unit_image_features(self.model, clip_preprocess(images, self.preprocess))
        txt = self.text_cache(prompts).to(img.device)
        cos = (img * txt).sum(-1)
        return RewardOutput(scores=cos, valid=torch.ones_like(cos, dtype=torch.bool))
