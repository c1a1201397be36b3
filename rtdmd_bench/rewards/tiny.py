"""Tiny random weights for every available neural scorer, written in the production layout.

``write_tiny_rewards(root)`` writes the same files the real weights have (HF ``save_pretrained`` folders,
the HPS fp16 ``{"state_dict": {"module."...}}`` checkpoint, ImageReward's key layout + ``med_config.json`` +
a WordPiece tokenizer folder, a Mask2Former folder and an open_clip colour classifier), so tests run the
production loaders unchanged. Sizes the loaders need come from config files inside the layout
(``config.json``, ``open_clip_config.json``, ``med_config.json``) -- loaders never check for "tiny".
About 1-3 s (after imports) and ~4 MB. The caller (``rtdmd_bench.testing.write_tiny_weights``) seeds torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rtdmd_bench.rewards.preprocess import CLIP_MEAN, CLIP_STD
from rtdmd_bench.tiny_tokenizers import (
    tiny_clip_tokenizer,  # the one tiny CLIP BPE (shared with the generators)
)

IMAGE_SIZE = 224  # production geometry; the towers stay tiny through large patches and narrow widths
TINY_OPEN_CLIP_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}


def _tiny_clip_model(tokenizer, hidden_act: str):
    from transformers import CLIPConfig, CLIPModel

    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=77, hidden_act=hidden_act,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, projection_dim=16)
    # projection_dim also inside vision_config, as in the real openai config.json, so that
    # CLIPVisionModelWithProjection (aesthetic) reads the right projection size from the same folder.
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  image_size=IMAGE_SIZE, patch_size=32, hidden_act=hidden_act, projection_dim=16)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    with torch.no_grad():
        model.logit_scale.fill_(torch.log(torch.tensor(100.0)))  # the saturated CLIP temperature
    return model


def _legacy_preprocessor_config() -> dict:
    """The pre-v5 hub form (int sizes, ``CLIPFeatureExtractor``), as in the laion ViT-H-14 repo."""
    return {"crop_size": IMAGE_SIZE, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": list(CLIP_MEAN),
            "image_std": list(CLIP_STD), "resample": 3, "size": IMAGE_SIZE}


def write_tiny_clip_dirs(root: Path) -> None:
    """``clip-vit-large-patch14/`` (v5 ``save_pretrained`` layout), ``PickScore_v1/`` and the laion processor dir
    (legacy layout), plus ``aesthetic/sac+logos+ava1-l14-linearMSE.pth`` sized to the tiny projection."""
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    from rtdmd_bench.rewards.heads import AffineMLPHead

    tok = tiny_clip_tokenizer()
    clip_dir = root / "clip-vit-large-patch14"
    clip_l = _tiny_clip_model(tok, "quick_gelu")
    clip_l.save_pretrained(clip_dir)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    CLIPProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(clip_dir)

    _tiny_clip_model(tok, "gelu").save_pretrained(root / "PickScore_v1")
    laion_dir = root / "CLIP-ViT-H-14-laion2B-s32B-b79K"
    tok.save_pretrained(laion_dir)
    (laion_dir / "preprocessor_config.json").write_text(json.dumps(_legacy_preprocessor_config(), indent=2))

    head = AffineMLPHead(clip_l.config.projection_dim)
    (root / "aesthetic").mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), root / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth")


def tiny_open_clip_config(quick_gelu: bool) -> dict:
    """A ViT-H-14-shaped open_clip config, tiny (text vocab stays 49408: the bundled BPE needs it)."""
    return {"embed_dim": 16, "quick_gelu": quick_gelu,
            "vision_cfg": {"image_size": IMAGE_SIZE, "layers": 2, "width": 32, "head_width": 16, "patch_size": 32},
            "text_cfg": dict(TINY_OPEN_CLIP_TEXT)}


def write_open_clip_config(directory: Path, model_cfg: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": list(CLIP_MEAN), "std": list(CLIP_STD)}}
    (directory / "open_clip_config.json").write_text(json.dumps(cfg, indent=2))


def write_tiny_hps(root: Path) -> None:
    """``hpsv2/HPS_v2.1_compressed.pt`` in the HPS format (fp16, ``module.`` prefixes) + its config."""
    from rtdmd_bench.rewards.open_clip_loading import build_open_clip

    cfg = tiny_open_clip_config(quick_gelu=False)
    model = build_open_clip(cfg)
    write_open_clip_config(root / "hpsv2", cfg)
    state = {"module." + k: v.half() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1}, root / "hpsv2" / "HPS_v2.1_compressed.pt")


def write_tiny_rewards(root: str | Path) -> Path:
    """Write tiny random weights for clipscore, aesthetic, pickscore, hpsv2, imagereward, geneval, hpsv3 and
    geneval2 (ocr needs none: its real models ship with rapidocr)."""
    from transformers.utils import logging as hf_logging

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()  # "Writing model shards" bars per folder
    try:
        write_tiny_clip_dirs(root)
        write_tiny_hps(root)
        for writer in _optional_writers():
            writer(root)
    finally:
        hf_logging.enable_progress_bar()
    return root


def _optional_writers():
    """Writers of scorers whose modules define ``write_tiny`` (ImageReward, GenEval, HPSv3 + GenEval2)."""
    writers = []
    for module_name in ("rtdmd_bench.rewards.tiny_imagereward", "rtdmd_bench.rewards.tiny_geneval",
                        "rtdmd_bench.rewards.tiny_vl"):
        try:
            module = __import__(module_name, fromlist=["write_tiny"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        writers.append(module.write_tiny)
    return writers
