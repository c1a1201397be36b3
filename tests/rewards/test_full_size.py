"""Full-size architectures on the meta device (no memory, no weights): a wrong architecture cannot pass
just because the tiny configs happen to load. Reference counts: REWARDS.md §5-§7 and the published models."""

from __future__ import annotations

import pytest
import torch


def _count(module: torch.nn.Module) -> tuple[int, float]:
    return len(module.state_dict()), sum(p.numel() for p in module.parameters()) / 1e6


def test_hps_vit_h14_open_clip():
    from rtdmd_bench.rewards.open_clip_loading import build_open_clip, read_open_clip_config

    cfg, _ = read_open_clip_config(__import__("pathlib").Path("/nonexistent"), "ViT-H-14")
    with torch.device("meta"):
        model = build_open_clip(cfg)
    tensors, params = _count(model)
    assert tensors == 686 and params == pytest.approx(986.1, abs=0.05)


def test_geneval_colour_vit_l14_quickgelu():
    from rtdmd_bench.rewards.open_clip_loading import build_open_clip, read_open_clip_config

    cfg, _ = read_open_clip_config(__import__("pathlib").Path("/nonexistent"), "ViT-L-14-quickgelu")
    with torch.device("meta"):
        model = build_open_clip(cfg)
    assert _count(model)[1] == pytest.approx(427.6, abs=0.1)
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"


def _hf_clip(text: dict, vision: dict, projection: int, act: str):
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config={**text, "hidden_act": act, "vocab_size": 49408, "max_position_embeddings": 77},
                     vision_config={**vision, "hidden_act": act, "image_size": 224, "patch_size": 14},
                     projection_dim=projection)
    with torch.device("meta"):
        return CLIPModel(cfg)


def test_clip_l14_openai():
    model = _hf_clip(dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
                     dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16),
                     768, "quick_gelu")
    assert _count(model)[1] == pytest.approx(427.6, abs=0.1)


def test_pickscore_clip_h14_matches_open_clip_vit_h14():
    model = _hf_clip(dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16),
                     dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16),
                     1024, "gelu")
    assert _count(model)[1] == pytest.approx(986.1, abs=0.1)


def test_imagereward_blip_large():
    from rtdmd_bench.rewards.imagereward_model import ImageRewardModel

    with torch.device("meta"):
        model = ImageRewardModel()
    tensors, params = _count(model)
    assert tensors == 625 and params == pytest.approx(446.67, abs=0.01)
    sd = model.state_dict()
    assert tuple(sd["blip.visual_encoder.pos_embed"].shape) == (1, 197, 1024)
    assert tuple(sd["blip.text_encoder.encoder.layer.0.crossattention.self.key.weight"].shape) == (768, 1024)
    assert tuple(sd["blip.text_encoder.embeddings.word_embeddings.weight"].shape) == (30524, 768)
    assert "blip.text_encoder.embeddings.position_ids" in sd
