"""PickScore v1: ``exp(logit_scale) * cos(E_img, E_txt)`` of the Pick-a-Pic fine-tuned CLIP ViT-H/14.

Raw model units (~22-24 in the papers' tables); never divided by 26 (that is an RL-side normalisation
from Flow-GRPO/RTDMD and belongs in trainer config). The processor (geometry + tokenizer) comes from a
different repo, ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``, exactly as the model card prescribes.
Weights: ``PickScore_v1/`` (HF ``CLIPModel``) + ``CLIP-ViT-H-14-laion2B-s32B-b79K/`` (processor files).
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

PICKSCORE_DIR = "PickScore_v1"
PROCESSOR_DIR = "CLIP-ViT-H-14-laion2B-s32B-b79K"


class PickScore(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B prompts -> ``exp(logit_scale) * cos`` ``[B]``; ``parts["cosine"]``."""

    spec = REWARDS.spec("pickscore")

    def __init__(self, embedder: CLIPEmbedder):
        super().__init__()
        self.embedder = embedder

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> PickScore:
        model_dir = require_model_dir(root, PICKSCORE_DIR, cls.spec.name)
        proc_dir = require_processor_dir(root, PROCESSOR_DIR, cls.spec.name)
        model = load_clip_model(model_dir)
        tokenizer = load_clip_tokenizer(proc_dir, model.config.text_config.vocab_size)
        return cls(CLIPEmbedder(model, tokenizer, read_preprocess_config(proc_dir)))

    @property
    def logit_scale(self) -> float:
        """``exp(logit_scale)`` of the checkpoint (the learned CLIP temperature, ~100 when saturated)."""
        return float(self.embedder.model.logit_scale.detach().float().exp())

    def score(self, images, prompts, metadata):
        img = self.embedder.image_embeds(images, tensor_path=self.grad_path)
        txt = self.embedder.text_embeds(prompts).to(img.device)
        cos = (img * txt).sum(-1)
        scores = self.embedder.model.logit_scale.float().exp() * cos
        return RewardOutput(scores=scores, valid=torch.ones_like(cos, dtype=torch.bool), parts={"cosine": cos})
