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


QWEN2_VL_7B = {  # Qwen/Qwen2-VL-7B-Instruct config.json (hub flat layout)
    "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "hidden_act": "silu",
    "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
    "num_key_value_heads": 4, "max_position_embeddings": 32768, "max_window_layers": 28, "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0, "sliding_window": 32768, "use_sliding_window": False, "tie_word_embeddings": False,
    "vocab_size": 152064, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                      "hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
}


def test_hpsv3_qwen2vl_7b():
    """Qwen2-VL-7B-Instruct has 8,291,375,616 parameters (its safetensors index: 16,582,751,232 bf16 bytes).
    HPSv3 = that model with the embeddings resized to the tokenizer + <|Reward|> (151,658 rows) and the ranknet
    head; we drop the unused lm_head (151,658 x 3,584) at load time."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from rtdmd_bench.rewards.hpsv3_model import HPSv3Model

    cfg = Qwen2VLConfig(**QWEN2_VL_7B)
    with torch.device("meta"):
        base = Qwen2VLForConditionalGeneration(cfg)
    assert sum(p.numel() for p in base.parameters()) == 8_291_375_616
    cfg.text_config.vocab_size = 151_658
    with torch.device("meta"):
        hps = HPSv3Model(cfg)
    head = 3584 * 1024 + 1024 + 1024 * 16 + 16 + 16 * 2 + 2
    lm_head = 151_658 * 3584
    assert sum(p.numel() for p in hps.parameters()) + lm_head == 8_291_375_616 - 2 * (152_064 - 151_658) * 3584 + head
    assert tuple(hps.state_dict()["rm_head.5.weight"].shape) == (2, 16)
    assert {k.split(".")[0] for k in hps.state_dict()} == {"visual", "model", "rm_head"}
