"""ImageReward v1.0's network, written from its published architecture, with the checkpoint's parameter names.

``blip.visual_encoder``: BLIP ViT-L/16 (224 px, width 1024, depth 24, 16 heads, pre-norm, LayerNorm eps 1e-6)
-> image tokens ``[B, 197, 1024]``. ``blip.text_encoder``: BLIP's "MED" BERT (12 layers, hidden 768, no
token-type embeddings, LayerNorm eps 1e-12) whose every layer adds cross-attention from the prompt tokens to
the image tokens (K/V 1024 -> 768). ``mlp``: ``AffineMLPHead(768)`` on the ``[CLS]`` hidden state.
``score = (mlp(h_CLS) - 0.16717362830052426) / 1.0333394966054072``.

Every parameter name equals the key in ``ImageReward.pt`` so ``load_state_dict(strict=True)`` works:
625 tensors, 446.67 M parameters at full size (``blip.vision_proj``/``blip.text_proj`` exist in the
checkpoint but do not take part in the score). Sizes come from ``med_config.json``; an optional
``"vision_config"`` entry there overrides the ViT-L/16 defaults (only tiny test weights write it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from rtdmd_bench.rewards.heads import AffineMLPHead

REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
BLIP_EMBED_DIM = 256  # vision_proj / text_proj output (contrastive heads of BLIP pre-training)


@dataclass(frozen=True)
class VisionConfig:
    image_size: int = 224
    patch_size: int = 16
    width: int = 1024
    depth: int = 24
    heads: int = 16
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 30524
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12


def configs_from_med_config(med: dict) -> tuple[VisionConfig, TextConfig]:
    """``(VisionConfig, TextConfig)`` from a parsed ``med_config.json`` (unknown keys ignored)."""
    if med.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"med_config hidden_act {med['hidden_act']!r} is not supported (ImageReward uses gelu)")
    text = TextConfig(**{f.name: med[f.name] for f in fields(TextConfig) if f.name in med})
    vision = VisionConfig(**med.get("vision_config", {}))
    return vision, text


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None):
    """Multi-head scaled dot-product attention. q ``[B,Lq,D]``, k/v ``[B,Lk,D]``, additive mask ``[B,1,1,Lk]``."""
    b, lq, d = q.shape
    split = lambda x: x.view(b, x.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(b, lq, d)


# ---- vision: BLIP's timm-style ViT ---------------------------------------------------------------------


class PatchEmbed(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.width, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x):  # [B,3,S,S] -> [B, (S/p)^2, W]
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.proj(_attention(q, k, v, self.heads, None))


class VisionMlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class VisionBlock(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width, eps=1e-6)
        self.attn = VisionAttention(cfg.width, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.width, eps=1e-6)
        self.mlp = VisionMlp(cfg.width, int(cfg.width * cfg.mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """``[B,3,S,S]`` normalised pixels -> ``[B, 1 + (S/p)^2, W]`` tokens (CLS first)."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        n_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, cfg.width))
        self.blocks = nn.ModuleList(VisionBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)

    def forward(self, pixels):
        x = self.patch_embed(pixels)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed[:, : x.shape[1] + 1]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


# ---- text: BERT with cross-attention (BLIP "MED") ---------------------------------------------------------


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        # persistent, as in the checkpoint (saved by BLIP's med.py)
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings).unsqueeze(0))

    def forward(self, input_ids):
        pos = self.position_ids[:, : input_ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: TextConfig, kv_width: int):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(kv_width, cfg.hidden_size)
        self.value = nn.Linear(kv_width, cfg.hidden_size)

    def forward(self, x, context, mask):
        return _attention(self.query(x), self.key(context), self.value(context), self.heads, mask)


class BertResidualOutput(nn.Module):
    """``LayerNorm(dense(h) + residual)`` (BERT's post-norm)."""

    def __init__(self, in_width: int, cfg: TextConfig):
        super().__init__()
        self.dense = nn.Linear(in_width, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: TextConfig, kv_width: int):
        super().__init__()
        self.self = BertSelfAttention(cfg, kv_width)
        self.output = BertResidualOutput(cfg.hidden_size, cfg)

    def forward(self, x, context, mask):
        return self.output(self.self(x, context, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, cfg: TextConfig, encoder_width: int):
        super().__init__()
        self.attention = BertAttention(cfg, cfg.hidden_size)
        self.crossattention = BertAttention(cfg, encoder_width)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertResidualOutput(cfg.intermediate_size, cfg)

    def forward(self, x, text_mask, image_tokens):
        x = self.attention(x, x, text_mask)
        x = self.crossattention(x, image_tokens, None)  # every image token is attended (mask of ones)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: TextConfig, encoder_width: int):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg, encoder_width) for _ in range(cfg.num_hidden_layers))


class MedBertModel(nn.Module):
    """``(input_ids [B,L], attention_mask [B,L], image_tokens [B,N,Wv])`` -> hidden states ``[B,L,H]``."""

    def __init__(self, cfg: TextConfig, encoder_width: int):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg, encoder_width)

    def forward(self, input_ids, attention_mask, image_tokens):
        x = self.embeddings(input_ids)
        # BLIP's extended mask: 0 for kept tokens, -10000 for padding (bidirectional encoder mode)
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.encoder.layer:
            x = layer(x, mask, image_tokens)
        return x


class BLIPBackbone(nn.Module):
    def __init__(self, vision: VisionConfig, text: TextConfig):
        super().__init__()
        self.visual_encoder = VisionTransformer(vision)
        self.text_encoder = MedBertModel(text, encoder_width=vision.width)
        self.vision_proj = nn.Linear(vision.width, BLIP_EMBED_DIM)
        self.text_proj = nn.Linear(text.hidden_size, BLIP_EMBED_DIM)


class ImageRewardModel(nn.Module):
    """``(pixels [B,3,S,S] normalised, input_ids [B,L], attention_mask [B,L])`` -> z-scored reward ``[B]``."""

    def __init__(self, vision: VisionConfig | None = None, text: TextConfig | None = None):
        super().__init__()
        self.vision_config = vision or VisionConfig()
        self.text_config = text or TextConfig()
        self.blip = BLIPBackbone(self.vision_config, self.text_config)
        self.mlp = AffineMLPHead(self.text_config.hidden_size)

    def forward(self, pixels, input_ids, attention_mask):
        image_tokens = self.blip.visual_encoder(pixels)
        hidden = self.blip.text_encoder(input_ids, attention_mask, image_tokens)
        raw = self.mlp(hidden[:, 0])  # [CLS] state (ImageReward keeps [CLS], it does not swap in [ENC])
        return (raw - REWARD_MEAN) / REWARD_STD
