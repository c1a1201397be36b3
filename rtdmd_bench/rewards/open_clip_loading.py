"""open_clip models from a single checkpoint file plus an optional ``open_clip_config.json`` beside it.

The architecture is the built-in open_clip config named by the scorer (``ViT-H-14`` for HPSv2.1,
``ViT-L-14-quickgelu`` for GenEval's colour classifier) unless an ``open_clip_config.json`` (HF-hub format:
``{"model_cfg": {...}, "preprocess_cfg": {...}}``) sits next to the checkpoint; tiny test weights always
write one, so the same loader builds them. The tokenizer is open_clip's bundled CLIP BPE (no network).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from rtdmd_bench.rewards.checkpoint import check_vocab_size, load_strict, read_state_dict
from rtdmd_bench.rewards.preprocess import CLIP_MEAN, CLIP_STD, PreprocessConfig

CONFIG_NAME = "open_clip_config.json"


def read_open_clip_config(directory: Path, default_model: str) -> tuple[dict, dict]:
    """``(model_cfg, preprocess_cfg)`` from ``directory/open_clip_config.json``, else the built-in config."""
    path = Path(directory) / CONFIG_NAME
    if path.is_file():
        raw = json.loads(path.read_text())
        return dict(raw.get("model_cfg", raw)), dict(raw.get("preprocess_cfg", {}))
    import open_clip

    cfg = open_clip.get_model_config(default_model)
    if cfg is None:
        raise ValueError(f"open_clip has no built-in config {default_model!r}")
    return cfg, {}


def build_open_clip(model_cfg: dict, default_quick_gelu: bool = False) -> nn.Module:
    """Randomly initialised ``open_clip.CLIP`` for ``model_cfg`` (works on the meta device too).

    ``default_quick_gelu`` applies when the config does not say: OpenAI-trained weights need QuickGELU, and
    open_clip >= 3 no longer switches it on for them (REWARDS.md §8.2 parity trap).
    """
    from open_clip.model import CLIP

    cfg = dict(model_cfg)
    quick_gelu = bool(cfg.pop("quick_gelu", default_quick_gelu))
    if cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {}):
        raise ValueError("only the standard open_clip CLIP text tower is supported by this loader")
    return CLIP(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"],
                quick_gelu=quick_gelu)


def preprocess_config(model_cfg: dict, preprocess_cfg: dict, mode: str) -> PreprocessConfig:
    size = int(model_cfg["vision_cfg"]["image_size"])
    return PreprocessConfig(size=size, crop=size, mode=mode,
                            mean=tuple(preprocess_cfg.get("mean", CLIP_MEAN)),
                            std=tuple(preprocess_cfg.get("std", CLIP_STD)))


def load_open_clip(checkpoint: Path, default_model: str, default_quick_gelu: bool = False):
    """``(model, tokenizer, model_cfg, preprocess_cfg)``: float32 eval-mode model with strictly loaded weights.

    The checkpoint may be safetensors or a torch file (``weights_only=True``), optionally wrapped in
    ``{"state_dict": ...}`` with ``module.`` prefixes (the HPS "compressed" fp16 format).
    """
    from open_clip.tokenizer import SimpleTokenizer

    model_cfg, pre_cfg = read_open_clip_config(Path(checkpoint).parent, default_model)
    model = build_open_clip(model_cfg, default_quick_gelu)
    load_strict(model, read_state_dict(checkpoint), str(checkpoint))
    tokenizer = SimpleTokenizer(context_length=model_cfg["text_cfg"].get("context_length", 77))
    check_vocab_size(tokenizer, model_cfg["text_cfg"].get("vocab_size", 49408), "open_clip's bundled BPE")
    return model.eval().requires_grad_(False), tokenizer, model_cfg, pre_cfg


def unit_text_features(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``[B, D]`` fp32 L2-normalised ``encode_text`` features of an open_clip model (tokens moved to its device)."""
    param = next(model.parameters())
    return torch.nn.functional.normalize(model.encode_text(tokens.to(param.device)).float(), dim=-1)


def unit_image_features(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """``[B, D]`` fp32 L2-normalised ``encode_image`` features of preprocessed ``pixels [B, 3, S, S]`` (cast to the
    model's dtype; differentiable)."""
    param = next(model.parameters())
    return torch.nn.functional.normalize(model.encode_image(pixels.to(param.device, param.dtype)).float(), dim=-1)
