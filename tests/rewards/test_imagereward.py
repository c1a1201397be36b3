"""ImageReward: strict loading on its own key layout, tokenisation, z-score normalisation."""

from __future__ import annotations

import shutil

import pytest
import torch

from rtdmd_bench.rewards import build
from rtdmd_bench.rewards.checkpoint import CheckpointMismatchError, TokenizerVocabError
from rtdmd_bench.rewards.imagereward_model import REWARD_MEAN, REWARD_STD


def _copy(reward_root, tmp_path):
    shutil.copytree(reward_root / "imagereward", tmp_path / "imagereward")
    return tmp_path


def test_checkpoint_has_the_published_key_layout(reward_root):
    state = torch.load(reward_root / "imagereward" / "ImageReward.pt", weights_only=True)
    prefixes = {k.split(".")[0] + "." + k.split(".")[1] for k in state}
    assert prefixes == {"blip.visual_encoder", "blip.text_encoder", "blip.vision_proj", "blip.text_proj",
                        "mlp.layers"}
    assert "blip.visual_encoder.blocks.0.attn.qkv.weight" in state
    assert "blip.text_encoder.encoder.layer.1.crossattention.output.LayerNorm.bias" in state
    assert {k.split(".")[2] for k in state if k.startswith("mlp.")} == {"0", "2", "4", "6", "7"}


@pytest.mark.parametrize("edit", ["extra", "missing"])
def test_strict_loading_refuses_other_layouts(reward_root, tmp_path, edit):
    root = _copy(reward_root, tmp_path)
    path = root / "imagereward" / "ImageReward.pt"
    state = torch.load(path, weights_only=True)
    if edit == "extra":
        state["blip.itm_head.weight"] = torch.zeros(2, 32)
    else:
        del state["blip.text_encoder.embeddings.position_ids"]
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match="itm_head" if edit == "extra" else "position_ids"):
        build("imagereward", weights=root)


def test_tokenisation_dec_enc_and_max_length(built):
    reward = built("imagereward")
    tok = reward.tokenizer
    assert len(tok) == reward.model.text_config.vocab_size
    assert tok.convert_tokens_to_ids("[DEC]") == len(tok) - 2 and tok.convert_tokens_to_ids("[ENC]") == len(tok) - 1
    ids = reward._tokenize(["a photo of the cat " * 20, "a dog"])
    assert ids.shape == (2, 2, 35)
    assert ids[0, 1].all() and ids[1, 1].sum() < 35  # long prompt cut hard at 35, short one padded
    assert ids[0, 0, 0] == tok.cls_token_id  # [CLS] stays first (the original score() keeps it)


def test_score_is_the_published_z_score(built):
    reward = built("imagereward")
    images = torch.rand(2, 3, 64, 64)
    out = reward(images, ["a cat", "a dog"])
    assert torch.allclose(out.scores, (out.parts["raw"] - REWARD_MEAN) / REWARD_STD, atol=1e-5)


def test_missing_tokenizer_dir_is_an_error_not_a_5_token_tokenizer(reward_root, tmp_path):
    root = _copy(reward_root, tmp_path)
    tok_dir = root / "imagereward" / "bert-base-uncased"
    for f in tok_dir.iterdir():
        f.unlink()
    (tok_dir / "tokenizer_config.json").write_text("{}")
    with pytest.raises(Exception, match="vocab.txt|tokens but"):
        build("imagereward", weights=root)


def test_wrong_vocab_is_refused(reward_root, tmp_path):
    root = _copy(reward_root, tmp_path)
    vocab = root / "imagereward" / "bert-base-uncased" / "vocab.txt"
    (root / "imagereward" / "bert-base-uncased" / "tokenizer.json").unlink()
    vocab.write_text(vocab.read_text() + "zebra\n")
    with pytest.raises(TokenizerVocabError):
        build("imagereward", weights=root)
