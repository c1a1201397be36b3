"""Formula identities and loaders of clipscore, pickscore, aesthetic and hpsv2 on tiny production-layout weights."""

from __future__ import annotations

import json

import pytest
import torch

from rtdmd_bench.rewards.preprocess import pil_clip_preprocess

PROMPTS = ["a photo of the cat", "an ink painting"]


def test_clipscore_is_the_cosine_of_clip_embeddings(built, smooth):
    reward = built("clipscore")
    images = smooth(2, 96, 96, seed=3)
    out = reward(images, PROMPTS)
    model = reward.embedder.model
    pixels = pil_clip_preprocess(images, reward.embedder.preprocess)
    tokens = reward.embedder.tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        ref = model(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, pixel_values=pixels)
    cos = ref.logits_per_image.diagonal() / model.logit_scale.exp()
    assert torch.allclose(out.scores, cos, atol=1e-5)
    assert torch.allclose(out.parts["clipscore_tm"], (100 * cos).clamp_min(0), atol=1e-3)


def test_pickscore_is_logit_scale_times_cosine_never_divided(built, smooth):
    reward = built("pickscore")
    out = reward(smooth(2, 80, 80, seed=4), PROMPTS)
    assert reward.logit_scale == pytest.approx(100.0, rel=1e-5)  # tiny weights use the saturated temperature
    assert torch.allclose(out.scores, reward.logit_scale * out.parts["cosine"], atol=1e-4)


def test_aesthetic_head_is_affine_in_the_normalised_embedding(built):
    head = built("aesthetic").head
    a, b = torch.randn(2, head.layers[0].in_features)
    mix = 0.3 * a + 0.7 * b
    s = head(torch.stack([a, b, mix]))
    assert s[2] == pytest.approx(float(0.3 * s[0] + 0.7 * s[1]), abs=1e-5)


def test_aesthetic_head_loads_strictly(reward_root, tmp_path):
    import shutil

    from rtdmd_bench.rewards import build
    from rtdmd_bench.rewards.checkpoint import CheckpointMismatchError

    root = tmp_path / "w"
    shutil.copytree(reward_root / "clip-vit-large-patch14", root / "clip-vit-large-patch14")
    state = torch.load(reward_root / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth", weights_only=True)
    state["layers.5.weight"] = state.pop("layers.6.weight")  # a wrong key layout must not load silently
    (root / "aesthetic").mkdir()
    torch.save(state, root / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth")
    with pytest.raises(CheckpointMismatchError, match="layers.6.weight"):
        build("aesthetic", weights=root)


def test_hps_checkpoint_format_loads_like_open_clip_itself(built, reward_root, smooth):
    """Our loader vs open_clip's own create_model(pretrained=<HPS file>): identical weights and features."""
    import open_clip

    reward = built("hpsv2")
    ckpt = reward_root / "hpsv2" / "HPS_v2.1_compressed.pt"
    raw = torch.load(ckpt, weights_only=True)
    assert all(k.startswith("module.") for k in raw["state_dict"])
    assert {v.dtype for v in raw["state_dict"].values()} == {torch.float16}
    cfg = json.loads((reward_root / "hpsv2" / "open_clip_config.json").read_text())["model_cfg"]
    open_clip.factory._MODEL_CONFIGS["rtdmd-test-hps"] = cfg
    theirs = open_clip.create_model("rtdmd-test-hps", pretrained=str(ckpt)).eval()
    for k, v in theirs.state_dict().items():
        assert torch.equal(v.float(), reward.model.state_dict()[k].float()), k
    pixels = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(theirs.encode_image(pixels), reward.model.encode_image(pixels), atol=1e-5)


def test_hps_score_is_cosine_of_normalised_features(built, smooth):
    from rtdmd_bench.rewards.preprocess import clip_preprocess

    reward = built("hpsv2")
    images = smooth(2, 120, 90, seed=5)  # non-square: longest side -> 224 then zero padding
    out = reward(images, PROMPTS)
    q = torch.round(images * 255) / 255
    with torch.no_grad():
        img = reward.model.encode_image(clip_preprocess(q, reward.preprocess), normalize=True)
        txt = reward.model.encode_text(reward.tokenizer(PROMPTS), normalize=True)
    assert torch.allclose(out.scores, (img * txt).sum(-1), atol=1e-5)
    assert reward.preprocess.mode == "pad"


def test_missing_hps_config_means_the_builtin_vit_h14(tmp_path):
    """Without open_clip_config.json beside the checkpoint the architecture is open_clip's real ViT-H-14."""
    from rtdmd_bench.rewards.open_clip_loading import read_open_clip_config

    model_cfg, pre_cfg = read_open_clip_config(tmp_path, "ViT-H-14")
    assert model_cfg["vision_cfg"]["width"] == 1280 and model_cfg["text_cfg"]["layers"] == 24 and pre_cfg == {}
