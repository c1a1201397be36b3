"""LAION improved aesthetic predictor v2: ``score = MLP(E_img / |E_img|)`` on the CLIP ViT-L/14 image embedding.

The MLP (``AffineMLPHead``) has no activations, so in eval mode the score is affine in the normalised
embedding. Unbounded regression on a 1-10 rating scale (papers: 5.2-6.0). Weights: the vision half of
``clip-vit-large-patch14/`` + ``aesthetic/sac+logos+ava1-l14-linearMSE.pth`` (fp32 state dict,
``layers.{0,2,4,6,7}.*``, read with ``weights_only=True``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.checkpoint import load_strict, read_state_dict
from rtdmd_bench.rewards.heads import AffineMLPHead
from rtdmd_bench.rewards.hf_clip import (
    CLIPEmbedder,
    load_clip_model,
    read_preprocess_config,
    require_model_dir,
    require_processor_dir,
)
from rtdmd_bench.weights import require_files

CLIP_L14_DIR = "clip-vit-large-patch14"
HEAD_FILE = "aesthetic/sac+logos+ava1-l14-linearMSE.pth"


class LaionAesthetic(Reward):
    """Images ``[B,3,H,W]`` in [0,1] -> aesthetic rating ``[B]`` (prompts ignored)."""

    spec = REWARDS.spec("aesthetic")

    def __init__(self, embedder: CLIPEmbedder, head: AffineMLPHead):
        super().__init__()
        self.embedder = embedder
        self.head = head

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> LaionAesthetic:
        model_dir = require_model_dir(root, CLIP_L14_DIR, cls.spec.name)
        require_processor_dir(root, CLIP_L14_DIR, cls.spec.name)
        (head_path,) = require_files(root, [HEAD_FILE], cls.spec.name)
        model = load_clip_model(model_dir, vision_only=True)
        head = AffineMLPHead(model.config.projection_dim)
        load_strict(head, read_state_dict(head_path), str(head_path))
        return cls(CLIPEmbedder(model, None, read_preprocess_config(model_dir)), head.eval())

    def score(self, images, prompts, metadata):
        emb = self.embedder.image_embeds(images, tensor_path=self.grad_path)
        head_dtype = self.head.layers[0].weight.dtype
        scores = self.head(emb.to(head_dtype)).float()
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool))
