"""HPSv3 on tiny random weights in the production layout: input geometry and patch layout against transformers'
Qwen2-VL processor, the authors' prompt, strict checkpoint loading. (The official model class was cross-checked
once outside the repository on the same tiny layout: max |diff| 2.7e-5 on scores of ~11.5, fp32.)"""

from __future__ import annotations

import shutil

import pytest
import torch

from rtdmd_bench.rewards.checkpoint import CheckpointMismatchError
from rtdmd_bench.rewards.hpsv3 import BASE_DIR, CHECKPOINT, PIXELS, hpsv3_text
from rtdmd_bench.rewards.qwen_vision import smart_resize


@pytest.mark.parametrize("hw, expected", [((1024, 1024), (448, 448)), ((512, 768), (364, 532)),
                                          ((448, 448), (448, 448)), ((64, 64), (448, 448))])
def test_smart_resize_at_the_hpsv3_pixel_budget(hw, expected):
    # 512x768: round to 504x756 (> budget) -> beta = sqrt(512*768/200704) -> floor(512/beta/28)*28 = 364, 532
    assert smart_resize(*hw, 28, PIXELS, PIXELS) == expected


def test_patches_equal_the_transformers_qwen2vl_processor(built, smooth):
    """Our PIL-path pixels == Qwen2VLImageProcessor on the PIL-resized image (the authors' two steps: their
    ``fetch_image`` resizes to the 256·28·28 budget, then the processor, with the base model's own pixel limits,
    leaves the size alone and normalises + flattens: transformers 4.45's processor, which the authors ran, returns
    the same-size image unchanged -- the cross-check found identical pixels -- hence ``do_resize=False`` here)."""
    from PIL import Image
    from transformers import Qwen2VLImageProcessorPil

    reward = built("hpsv3")
    images = smooth(2, 512, 768, seed=3)
    with torch.no_grad():  # the evaluation (PIL) path
        ours, grid = reward.pixels(images)
    arr = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    pils = [Image.fromarray(a).resize((532, 364), Image.BICUBIC) for a in arr]
    hf = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=28 * 28 * 16384, patch_size=14, merge_size=2,
                                  temporal_patch_size=2)(images=pils, do_resize=False, return_tensors="pt")
    assert grid.tolist() == hf["image_grid_thw"].tolist() == [[1, 26, 38]] * 2
    assert torch.allclose(ours, hf["pixel_values"], atol=1e-5)


def test_prompt_is_the_authors_chat_message(built):
    reward = built("hpsv3")
    tok = reward.tokenizer
    ids = reward.token_ids("a red fox", 256)
    text = tok.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                           "<|vision_start|>" + "<|image_pad|>" * 256 + "<|vision_end|>\nYou are tasked")
    assert text.endswith("Textual prompt - a red fox\n\n\n\nPlease provide the overall ratings of this image: "
                         "<|Reward|>\n\nEND\n<|im_end|>\n<|im_start|>assistant\n")
    assert ids.count(reward.reward_token_id) == 1 and hpsv3_text("x").count("<|Reward|>") == 1
    assert reward.reward_token_id == len(tok) - 1  # added after the base vocabulary, as the authors do


def test_score_is_mu_of_the_head_at_the_reward_token(built, smooth):
    """Causal decoder: what follows <|Reward|> cannot change mu; the head's second output is sigma."""
    reward = built("hpsv3")
    images = smooth(2, 448, 448, seed=4)
    out = reward(images, ["a cat", "a dog"])
    flat, grid = reward.pixels(images)
    ids = [reward.token_ids(p, 256) for p in ["a cat", "a dog"]]
    cut = [i[:i.index(reward.reward_token_id) + 1] for i in ids]  # drop "END" and the assistant turn
    n = max(map(len, cut))
    pad = reward.tokenizer.pad_token_id
    mu_sigma = reward.model(torch.tensor([c + [pad] * (n - len(c)) for c in cut]),
                            torch.tensor([[1] * len(c) + [0] * (n - len(c)) for c in cut]), flat, grid,
                            reward.reward_token_id)
    assert torch.allclose(mu_sigma[:, 0], out.scores, atol=1e-5)
    assert torch.allclose(mu_sigma[:, 1], out.parts["sigma"], atol=1e-5)


def test_empty_build_equals_a_random_init_build_after_loading(reward_root):
    """``HPSv3Model.empty`` skips 8 B random inits; the rebuilt rotary buffers must equal a normal build's."""
    from transformers import Qwen2VLConfig

    from rtdmd_bench.rewards.checkpoint import load_strict, read_state_dict
    from rtdmd_bench.rewards.hpsv3_model import HPSv3Model

    cfg = Qwen2VLConfig.from_pretrained(str(reward_root / BASE_DIR))
    state = read_state_dict(reward_root / CHECKPOINT)
    cfg.text_config.vocab_size = state["lm_head.weight"].shape[0]
    state.pop("lm_head.weight")
    a, b = HPSv3Model(cfg), HPSv3Model.empty(cfg)
    load_strict(a, state, "a")
    load_strict(b, state, "b")
    buffers = dict(a.named_buffers())
    assert buffers and all(torch.equal(buffers[k], v) for k, v in b.named_buffers())
    assert b.rm_head[0].weight.dtype == torch.float32 and b.to(torch.bfloat16).rm_head[0].weight.dtype == torch.float32


def test_checkpoint_mismatches_are_named(reward_root, tmp_path):
    from safetensors.torch import load_file, save_file

    from rtdmd_bench.rewards import build

    shutil.copytree(reward_root / "hpsv3", tmp_path / "hpsv3")
    path = tmp_path / CHECKPOINT
    state = load_file(str(path))
    cases = [({k: v for k, v in state.items() if k != "rm_head.5.weight"}, "missing keys: rm_head.5.weight"),
             ({**state, "score.weight": torch.zeros(2)}, "unexpected keys: score.weight"),
             ({k: v for k, v in state.items() if k != "lm_head.weight"}, "lacks lm_head.weight"),
             ({**state, "lm_head.weight": state["lm_head.weight"][:-1]}, "<|Reward|>")]
    for bad, needle in cases:
        save_file(bad, str(path))
        with pytest.raises(CheckpointMismatchError, match=needle.replace("|", r"\|")):
            build("hpsv3", weights=tmp_path)
