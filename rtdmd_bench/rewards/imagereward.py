"""ImageReward v1.0 scorer: z-scored BLIP reward (papers: ~0.8-1.4), differentiable.

Prompts: bert-base-uncased WordPiece + ``[DEC]`` (bos) + ``[ENC]`` (additional special), padded/truncated to
35 tokens as the original ``score()``; the tokenizer loads from ``imagereward/bert-base-uncased/`` and its
size must equal the checkpoint's vocabulary (30524). Images: evaluation uses PIL bicubic resize(224) +
centre crop (the original ``_transform``); the gradient path uses the antialiased tensor resize (RTDMD's
back-prop path does not antialias; that differs from PIL by ~0.3 normalised units at 1024 px).
Weights: ``imagereward/{ImageReward.pt, med_config.json, bert-base-uncased/}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rtdmd_bench.rewards import REWARDS
from rtdmd_bench.rewards.base import Reward, RewardOutput
from rtdmd_bench.rewards.checkpoint import check_vocab_size, load_strict, read_state_dict
from rtdmd_bench.rewards.imagereward_model import (
    REWARD_MEAN,
    REWARD_STD,
    ImageRewardModel,
    configs_from_med_config,
)
from rtdmd_bench.rewards.preprocess import (
    PreprocessConfig,
    TextFeatureCache,
    clip_preprocess,
    pil_clip_preprocess,
)
from rtdmd_bench.weights import require_files

CHECKPOINT = "imagereward/ImageReward.pt"
MED_CONFIG = "imagereward/med_config.json"
TOKENIZER_DIR = "imagereward/bert-base-uncased"
MAX_PROMPT_TOKENS = 35


def load_imagereward_tokenizer(directory: Path, vocab_size: int):
    """BertTokenizer from a local dir + ``[DEC]``/``[ENC]``, size checked against ``vocab_size``."""
    from transformers import BertTokenizer

    if not (directory / "vocab.txt").is_file() and not (directory / "tokenizer.json").is_file():
        require_files(directory.parent.parent, [f"{TOKENIZER_DIR}/vocab.txt"], "imagereward")
    tokenizer = BertTokenizer.from_pretrained(str(directory), local_files_only=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    check_vocab_size(tokenizer, vocab_size, directory)
    return tokenizer


class ImageReward(Reward):
    """Images ``[B,3,H,W]`` in [0,1] + B prompts -> ImageReward z-score ``[B]``; ``parts["raw"]`` = MLP output."""

    spec = REWARDS.spec("imagereward")

    def __init__(self, model: ImageRewardModel, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        size = model.vision_config.image_size
        self.preprocess = PreprocessConfig(size=size, crop=size, mode="crop")
        # the text tower attends to the image, so only the tokenisation is cacheable per prompt
        self.token_cache = TextFeatureCache(self._tokenize)

    @classmethod
    def from_weights(cls, root: Path, device="cpu", dtype=None) -> ImageReward:
        ckpt, med_path, tok_dir = require_files(root, [CHECKPOINT, MED_CONFIG, TOKENIZER_DIR], cls.spec.name)
        vision, text = configs_from_med_config(json.loads(med_path.read_text()))
        model = ImageRewardModel(vision, text)
        load_strict(model, read_state_dict(ckpt), str(ckpt))
        tokenizer = load_imagereward_tokenizer(tok_dir, text.vocab_size)
        return cls(model.eval().requires_grad_(False), tokenizer)

    def _tokenize(self, prompts: list[str]) -> torch.Tensor:
        """``U`` prompts -> ``[U, 2, 35]`` long (input_ids, attention_mask)."""
        tok = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=MAX_PROMPT_TOKENS,
                             return_tensors="pt")
        return torch.stack([tok.input_ids, tok.attention_mask], dim=1)

    def score(self, images, prompts, metadata):
        param = next(self.model.parameters())
        fn = clip_preprocess if self.grad_path else pil_clip_preprocess
        pixels = fn(images, self.preprocess).to(device=param.device, dtype=param.dtype)
        tokens = self.token_cache(prompts).to(param.device)
        scores = self.model(pixels, tokens[:, 0], tokens[:, 1]).float()
        return RewardOutput(scores=scores, valid=torch.ones_like(scores, dtype=torch.bool),
                            parts={"raw": scores * REWARD_STD + REWARD_MEAN})
