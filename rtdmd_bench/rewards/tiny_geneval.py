"""Tiny GenEval weights in the production layout: a random Mask2Former (tiny Swin backbone, 80 COCO labels named
as in the HF/detectron2 ``id2label``) + its image processor, and a tiny QuickGELU open_clip colour classifier
(``open_clip_model.safetensors`` + ``open_clip_config.json``). ~2.3 MB, ~1.3 s after imports (mostly the open_clip build)."""

from __future__ import annotations

from pathlib import Path

# HF / detectron2 spelling of the COCO classes ("mouse", "remote", "keyboard"): the loader must map them.
_HF_RENAMES = {"computer mouse": "mouse", "tv remote": "remote", "computer keyboard": "keyboard"}
DETECTOR_INPUT = {"shortest_edge": 64, "longest_edge": 128}  # tiny inputs keep the test fast


def tiny_mask2former_config():
    """Mask2Former for COCO instance segmentation with every width at its minimum (GroupNorm needs 32)."""
    from transformers import Mask2FormerConfig, SwinConfig

    from rtdmd_bench.rewards.geneval import GENEVAL_OBJECTS

    id2label = {i: _HF_RENAMES.get(n, n) for i, n in enumerate(GENEVAL_OBJECTS)}
    backbone = SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=7, image_size=224,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    return Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                             encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2,
                             num_queries=10, num_attention_heads=2, num_labels=len(id2label), id2label=id2label,
                             label2id={n: i for i, n in id2label.items()})


def write_tiny(root: Path) -> None:
    from safetensors.torch import save_file
    from transformers import Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor

    from rtdmd_bench.rewards.geneval import CLIP_CHECKPOINT, CLIP_DIR, DETECTOR_DIR
    from rtdmd_bench.rewards.open_clip_loading import build_open_clip
    from rtdmd_bench.rewards.tiny import tiny_open_clip_config, write_open_clip_config

    root = Path(root)
    Mask2FormerForUniversalSegmentation(tiny_mask2former_config()).save_pretrained(root / DETECTOR_DIR)
    Mask2FormerImageProcessor(size=dict(DETECTOR_INPUT), size_divisor=32).save_pretrained(root / DETECTOR_DIR)
    cfg = tiny_open_clip_config(quick_gelu=True)
    write_open_clip_config(root / CLIP_DIR, cfg)
    # fp16 halves the 49408-token embedding (~3 MB in fp32); the loader casts back to the model's fp32
    state = {k: v.half().contiguous() for k, v in build_open_clip(cfg).state_dict().items()}
    save_file(state, str(root / CLIP_CHECKPOINT))
