"""Tiny ImageReward weights: the real key layout, a tiny ``med_config.json`` and a WordPiece tokenizer dir."""

from __future__ import annotations

import json
from pathlib import Path

import torch

# [PAD] [UNK] [CLS] [SEP] [MASK], some words, letters and ##letters so any lowercase word tokenises
_WORDS = ["a", "an", "the", "of", "photo", "painting", "cat", "dog", "sea", "ink", "red", "blue"]
TINY_VOCAB = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + _WORDS + [chr(c) for c in range(97, 123)]
                                + ["##" + chr(c) for c in range(97, 123)] + list(".,!?'-0123456789")))


def tiny_med_config() -> dict:
    """BLIP med_config keys with tiny sizes (+2 tokens for [DEC]/[ENC]) and the optional vision override."""
    return {
        "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 37,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 64, "model_type": "bert", "num_attention_heads": 4,
        "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": len(TINY_VOCAB) + 2,
        "encoder_width": 32, "add_cross_attention": True,
        "vision_config": {"image_size": 224, "patch_size": 32, "width": 32, "depth": 2, "heads": 4},
    }


def write_tiny(root: Path) -> None:
    from transformers import BertTokenizer

    from rtdmd_bench.rewards.imagereward_model import ImageRewardModel, configs_from_med_config

    directory = Path(root) / "imagereward"
    tok_dir = directory / "bert-base-uncased"
    tok_dir.mkdir(parents=True, exist_ok=True)
    med = tiny_med_config()
    (directory / "med_config.json").write_text(json.dumps(med, indent=2))
    (tok_dir / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    BertTokenizer(vocab={w: i for i, w in enumerate(TINY_VOCAB)}, do_lower_case=True).save_pretrained(tok_dir)
    model = ImageRewardModel(*configs_from_med_config(med))
    for name, p in model.named_parameters():  # zero-initialised tokens would make the test signal trivial
        if name.endswith(("cls_token", "pos_embed")):
            torch.nn.init.normal_(p, std=0.02)
    torch.save(model.state_dict(), directory / "ImageReward.pt")
