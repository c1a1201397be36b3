"""CLIPScore: cosine similarity of OpenAI CLIP ViT-L/14 image and prompt embeddings (the papers' 0.28-0.32).

``score = <E_img/|E_img|, E_txt/|E_txt|>`` (RTDMD's ``logits_per_image / 100`` is the same number because
L/14's ``exp(logit_scale)`` is 100). ``parts["clipscore_tm"] = max(100 * cos, 0)`` is the torchmetrics
convention, from the same forward. Weights: ``clip-vit-large-patch14/`` (HF ``CLIPModel`` + processor files).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.hf_clip import (
    CLIPEmbedder,
    load_clip_model,
    load_clip_tokenizer,
    read_preprocess_config,
    require_model_dir,
    require_processor_dir,
)

CLIP_L14_DIR = "clip-vit-large-patch14"


class CLIPScore(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B prompts -> cosine ``[B]``."""

    spec = REWARDS.spec("clipscore")

    def __init__(self, embedder: CLIPEmbedder):
        super().__init__()
        self.embedder = embedder

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> CLIPScore:
        model_dir = require_model_dir(root, CLIP_L14_DIR, cls.spec.name)
        require_processor_dir(root, CLIP_L14_DIR, cls.spec.name)
        model = load_clip_model(model_dir)
        tokenizer = load_clip_tokenizer(model_dir, model.config.text_config.vocab_size)
        return cls(CLIPEmbedder(model, tokenizer, read_preprocess_config(model_dir)))

    def score(self, images, prompts, metadata):
        img = self.embedder.image_embeds(images, tensor_path=self.grad_path)
        txt = self.embedder.text_embeds(prompts).to(img.device)
        cos = (img * txt).sum(-1)
        return RewardOutput(scores=cos, valid=torch.ones_like(cos, dtype=torch.bool),
                            parts={"clipscore_tm": (100.0 * cos).clamp_min(0.0)})
