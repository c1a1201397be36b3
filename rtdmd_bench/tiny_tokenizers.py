"""Tiny offline tokenizers of the real tokenizer classes, shared by every tiny-weight writer (generators and
scorers): byte-level CLIP BPE, unigram T5, byte-level Qwen2 with the chat template FLUX.2-klein applies.

transformers 5 builds them from in-memory vocab/merges (no files, no network).
"""

from __future__ import annotations

QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def byte_alphabet() -> list[str]:
    """The GPT-2/CLIP byte-level alphabet (256 printable stand-ins for the bytes)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, extra = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


def tiny_clip_tokenizer():
    """Byte-level CLIP BPE with a handful of merges (transformers 5 takes vocab/merges in memory)."""
    from transformers import CLIPTokenizer

    chars, vocab = byte_alphabet(), {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for c in chars:
        vocab.setdefault(c + "</w>", len(vocab))
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("i", "n")]  # merges must be tuples
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    tok.model_max_length = 77
    return tok


def tiny_t5_tokenizer():
    """Unigram T5 tokenizer over letters plus a few words."""
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-"]
    pieces += [("\u2581" + w, -3.0) for w in ["a", "the", "of", "dog", "cat", "photo", "painting"]]
    tok = T5TokenizerFast(vocab=pieces, extra_ids=0)
    tok.model_max_length = 512
    return tok


def tiny_qwen_tokenizer():
    """Byte-level Qwen2 tokenizer with the chat template FLUX.2-klein applies."""
    from transformers import Qwen2TokenizerFast

    vocab = {}
    for c in byte_alphabet():
        vocab.setdefault(c, len(vocab))
    merges = [("Ġ", "t"), ("h", "e"), ("i", "n")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tok = Qwen2TokenizerFast(vocab=vocab, merges=merges)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.add_tokens(["<think>", "</think>"])
    tok.chat_template = QWEN_CHAT_TEMPLATE
    tok.model_max_length = 512
    return tok


