"""Tiny random HPSv3 (Qwen2-VL) and GenEval2 (Qwen3-VL) weights in the production layout.

Both use a byte-level Qwen2 BPE tokenizer built in memory with the Qwen VL special tokens and a chat template
that renders the same text as the real model's (Qwen2-VL-Instruct: default system prompt; Qwen3-VL-Instruct:
none). HPSv3: ``hpsv3/Qwen2-VL-7B-Instruct/`` holds a hub-style flat ``config.json`` (the legacy layout of the
real file), the tokenizer with the template in ``tokenizer_config.json`` (+ ``chat_template.json``) and a
``preprocessor_config.json``; ``hpsv3/HPSv3.safetensors`` holds every weight in bf16 under the checkpoint's key
names, ``lm_head.weight`` included. GenEval2: ``geneval2/Qwen3-VL-8B-Instruct/`` is a ``save_pretrained``
model + processor folder, as the hub repo. One or two layers everywhere; ~1 s.
"""

from __future__ import annotations

import json
from pathlib import Path

VL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
               "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
               "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
_CONTENT = ("{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
            "{% if c['type'] == 'image' or 'image' in c %}<|vision_start|><|image_pad|><|vision_end|>"
            "{% elif 'text' in c %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n")
QWEN2_VL_TEMPLATE = ("{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\n"
                     "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n" + _CONTENT +
                     "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
QWEN3_VL_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n" + _CONTENT +
                     "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# a few merges so that common words of the prompts are single tokens (shorter tiny sequences)
_MERGES = [("Ġ", "t"), ("h", "e"), ("i", "n"), ("Ġt", "he"), ("Ġ", "a"), ("o", "n"), ("e", "r"), ("Ġ", "s"),
           ("Ġ", "Y"), ("e", "s"), ("ĠY", "es"), ("Y", "es"), ("Ġ", "y"), ("Ġy", "es"), ("y", "es")]


def tiny_vl_tokenizer(template: str):
    """Byte-level ``Qwen2TokenizerFast`` + the Qwen VL special tokens, ``<|endoftext|>`` as pad."""
    from transformers import Qwen2TokenizerFast

    from rtdmd_bench.tiny_tokenizers import byte_alphabet

    vocab: dict[str, int] = {}
    for c in byte_alphabet():
        vocab.setdefault(c, len(vocab))
    for a, b in _MERGES:
        vocab.setdefault(a + b, len(vocab))
    tok = Qwen2TokenizerFast(vocab=vocab, merges=list(_MERGES), unk_token=None, bos_token=None,
                             eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": VL_SPECIALS})
    tok.chat_template = template
    tok.model_max_length = 32768
    return tok


def write_tiny_hpsv3(root: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2VLConfig

    from rtdmd_bench.rewards.hpsv3 import BASE_DIR, CHECKPOINT
    from rtdmd_bench.rewards.hpsv3_model import HPSv3Model
    from rtdmd_bench.rewards.preprocess import CLIP_MEAN, CLIP_STD

    base = Path(root) / BASE_DIR
    base.mkdir(parents=True, exist_ok=True)
    tok = tiny_vl_tokenizer(QWEN2_VL_TEMPLATE)
    tok.save_pretrained(base, save_jinja_files=False)
    (base / "chat_template.json").write_text(json.dumps({"chat_template": QWEN2_VL_TEMPLATE}))
    ids = {t: tok.convert_tokens_to_ids(t) for t in VL_SPECIALS}
    flat = {  # the hub's legacy flat layout (text keys at the top level), tiny sizes
        "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl", "hidden_act": "silu",
        "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2,
        "num_key_value_heads": 1, "max_position_embeddings": 4096, "max_window_layers": 1, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "sliding_window": 4096, "use_sliding_window": False, "tie_word_embeddings": False,
        "vocab_size": len(tok), "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"], "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"], "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "torch_dtype": "bfloat16",
        "vision_config": {"depth": 1, "embed_dim": 16, "mlp_ratio": 2, "num_heads": 2, "in_chans": 3,
                          "hidden_size": 32, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
    }
    (base / "config.json").write_text(json.dumps(flat, indent=2))
    (base / "preprocessor_config.json").write_text(json.dumps({
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor"}, indent=2))
    config = Qwen2VLConfig.from_pretrained(str(base))
    config.text_config.vocab_size = len(tok) + 1  # + <|Reward|>, as the authors' resize_token_embeddings
    model = HPSv3Model(config)
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = torch.randn(len(tok) + 1, 32).to(torch.bfloat16)
    save_file(state, str(Path(root) / CHECKPOINT))


# GenEval2's tiny images: the real processor keeps ~1024 px images at 1024 px (32 px per merged token); the tiny one
# caps inputs at 4x4 merged tokens so a test forward stays in milliseconds.
TINY_QWEN3_PIXELS = {"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 16}


def write_tiny_geneval2(root: Path) -> None:
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from rtdmd_bench.rewards.geneval2 import MODEL_DIR

    directory = Path(root) / MODEL_DIR
    tok = tiny_vl_tokenizer(QWEN3_VL_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in VL_SPECIALS}
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tok) + 7, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 5000000.0,
                                          "mrope_section": [2, 3, 3], "mrope_interleaved": True}),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=48, num_heads=2, out_hidden_size=32,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16,
                           deepstack_visual_indexes=[0, 1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    Qwen3VLForConditionalGeneration(config).save_pretrained(directory)  # vocabulary padded past the tokenizer, as the real one
    image_processor = Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, image_mean=[0.5] * 3,
                                            image_std=[0.5] * 3, size=dict(TINY_QWEN3_PIXELS))
    video_processor = Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2)
    Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                     chat_template=QWEN3_VL_TEMPLATE).save_pretrained(directory)


def write_tiny(root: Path) -> None:
    write_tiny_hpsv3(root)
    write_tiny_geneval2(root)
