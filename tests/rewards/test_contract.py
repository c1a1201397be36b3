"""The Reward contract on every scorer: gradients, grad-vs-eval agreement, batch independence, bad inputs."""

from __future__ import annotations

import shutil

import pytest
import torch

from rtdmd_bench.rewards import REWARDS, build
from rtdmd_bench.rewards.base import RewardInputError
from rtdmd_bench.weights import MissingWeightsError

NEURAL = ["clipscore", "aesthetic", "pickscore", "hpsv2", "imagereward", "hpsv3"]
# Stated tolerances of |grad path - eval path| on the same (already 8-bit) image. The paths differ only in
# the resize (tensor bicubic+antialias vs PIL bicubic on uint8); ~1e-3 in cosine units on real models.
GRAD_VS_EVAL_TOL = {"clipscore": 5e-3, "aesthetic": 5e-3, "pickscore": 0.5, "hpsv2": 1e-4, "imagereward": 5e-2,
                    "hpsv3": 5e-3}
PROMPTS = ["a photo of the cat", "an ink painting of the sea", "a photo of the cat"]


def _images(b=3, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(b, 3, h, w, generator=g) * 255) / 255


@pytest.mark.parametrize("name", NEURAL)
def test_gradient_reaches_every_pixel(built, name):
    reward = built(name)
    assert reward.spec.differentiable
    images = _images().requires_grad_(True)
    out = reward(images, PROMPTS)
    assert out.scores.shape == (3,) and out.scores.requires_grad
    out.scores.sum().backward()
    grad = images.grad
    assert torch.isfinite(grad).all()
    assert (grad != 0).all(), f"{(grad == 0).float().mean():.3%} of pixels got no gradient"
    assert not any(p.requires_grad for p in reward.parameters())


@pytest.mark.parametrize("name", ["jpeg_compressibility"])
def test_non_differentiable_scorers_return_no_graph(reward_root, name):
    reward = build(name, weights=reward_root)
    images = _images().requires_grad_(True)
    out = reward(images, PROMPTS)
    assert not out.scores.requires_grad


@pytest.mark.parametrize("name", NEURAL)
def test_grad_path_agrees_with_eval_path(built, name):
    reward = built(name)
    images = _images(h=96, w=96, seed=1)
    with torch.no_grad():
        eval_scores = reward(images, PROMPTS).scores
    grad_scores = reward(images.clone().requires_grad_(True), PROMPTS).scores.detach()
    assert (grad_scores - eval_scores).abs().max() < GRAD_VS_EVAL_TOL[name]
    assert not torch.equal(grad_scores, eval_scores) or name == "hpsv2"  # hpsv2 shares the tensor path


@pytest.mark.parametrize("name", NEURAL)
def test_scores_do_not_depend_on_batch_composition(built, name):
    reward = built(name)
    images = _images(b=3, seed=2)
    together = reward(images, PROMPTS).scores
    alone = torch.cat([reward(images[i:i + 1], PROMPTS[i:i + 1]).scores for i in range(3)])
    reordered = reward(images.flip(0), PROMPTS[::-1]).scores.flip(0)
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.allclose(together, reordered, atol=1e-5)
    assert together.dtype == torch.float32 and reward(images, PROMPTS).valid.all()


@pytest.mark.parametrize("name", NEURAL)
def test_bad_inputs_raise(built, name):
    reward = built(name)
    good = _images(b=2)
    cases = [
        (good * 2, ["a", "b"], "range"),
        (good.masked_fill(torch.zeros_like(good, dtype=torch.bool).index_fill_(3, torch.tensor([0]), True), float("nan")),
         ["a", "b"], "NaN"),
        (good[:, :2], ["a", "b"], "3,H,W"),
        (good[0], ["a", "b"], "3,H,W"),
        (good, [], "prompt"),
        (good, ["a"], "2 images but 1 prompts"),
        (good, ["a", "b"], None),
    ]
    for images, prompts, match in cases:
        if match is None:
            reward(images, prompts, metadata=[{}, {}])
            with pytest.raises(RewardInputError, match="metadata"):
                reward(images, prompts, metadata=[{}])
        else:
            with pytest.raises(RewardInputError, match=match):
                reward(images, prompts)


@pytest.mark.parametrize("name", NEURAL + ["geneval2"])
def test_missing_weight_files_are_listed_with_the_fix(tmp_path, name):
    with pytest.raises(MissingWeightsError) as info:
        build(name, weights=tmp_path)
    msg = str(info.value)
    assert f"rtdmd-bench weights fetch {name}" in msg and str(tmp_path) in msg
    assert any(f.split("/")[0] in msg for f in REWARDS.spec(name).weight_files)


def test_partial_hf_folder_names_the_missing_weights(reward_root, tmp_path):
    shutil.copytree(reward_root / "clip-vit-large-patch14", tmp_path / "clip-vit-large-patch14")
    (tmp_path / "clip-vit-large-patch14" / "model.safetensors").unlink()
    with pytest.raises(MissingWeightsError, match="model.safetensors"):
        build("clipscore", weights=tmp_path)


def test_wrong_tokenizer_vocab_size_is_an_error(reward_root, tmp_path):
    """transformers 5 silently returns a 5-token tokenizer when files are missing; we refuse mismatches."""
    from transformers import CLIPTokenizer

    from rtdmd_bench.rewards.checkpoint import TokenizerVocabError
    from rtdmd_bench.tiny_tokenizers import byte_alphabet

    for d in ("PickScore_v1", "CLIP-ViT-H-14-laion2B-s32B-b79K"):
        shutil.copytree(reward_root / d, tmp_path / d)
    proc = tmp_path / "CLIP-ViT-H-14-laion2B-s32B-b79K"
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (proc / f).unlink()
    vocab = {c: i for i, c in enumerate(byte_alphabet())}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(proc)  # 258 tokens, model expects 518
    with pytest.raises(TokenizerVocabError, match="258 tokens"):
        build("pickscore", weights=tmp_path)


def test_every_reward_declares_units_direction_version_and_grad():
    for spec in REWARDS:
        assert spec.units and spec.version and isinstance(spec.higher_is_better, bool)
        assert isinstance(spec.differentiable, bool) and spec.description
        assert not any(w in spec.description.lower() for w in ("unavailable", "later issue", "todo"))


def test_text_features_are_cached_per_unique_prompt(built):
    reward = built("clipscore")
    cache = reward.embedder.text_cache
    cache.clear()
    before = cache.encoded
    reward(_images(b=3), PROMPTS)
    reward(_images(b=3, seed=5), PROMPTS)
    assert cache.encoded - before == 2
