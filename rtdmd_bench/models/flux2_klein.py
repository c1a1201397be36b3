"""FLUX.2-klein (distilled 4B/9B and the base teachers; ``family`` ``flux2_klein``) over ``Flux2KleinPipeline``.

* Text (§1.6): Qwen3 on the chat template (``add_generation_prompt=True``, ``enable_thinking=False``), padded to 512,
  hidden states of layers ``text_encoder_out_layers`` (default (9, 18, 27)) stacked on features; no attention mask
  reaches the transformer; text position ids ``(0, 0, 0, l)``.
* Latents (§1.5): the 2×2-patchified, BatchNorm-normalised VAE latent ``[B, 128, H/16, W/16]``; tokens are a plain
  reshape ``[B, C, h, w] -> [B, hw, C]`` with ids ``(0, row, col, 0)``. Decoding: ``x·sqrt(var+eps) + mean``,
  un-patchify to ``[B, 32, H/8, W/8]``, ``VAE.decode``.
* Timestep ``(1000σ).to(model dtype)/1000`` (P1); CFG (base teachers) is two separate forwards.
* Few-step levels: exponential shift with the empirical μ of the token count and step count (§1.3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rtdmd_bench.flow import dynamic_shift, sigma_batch
from rtdmd_bench.models.common import Cond, FlowGenerator, cfg_combine
from rtdmd_bench.models.family import FAMILIES, FamilySpec, TinyPreset

DEFAULT_OUT_LAYERS = (9, 18, 27)
VAE_SCALE = 8
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
                "to_qkv_mlp_proj")  # §3.1, plus single_transformer_blocks.{i}.attn.to_out


def patchify(z: Any) -> Any:
    """Space-to-channel 2×2: ``[B, C, H, W] -> [B, 4C, H/2, W/2]`` (channel-major, then the 2×2 offsets)."""
    b, c, h, w = z.shape
    return z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)


def unpatchify(x: Any) -> Any:
    """Inverse of ``patchify``: ``[B, 4C, h, w] -> [B, C, 2h, 2w]``."""
    b, c4, h, w = x.shape
    return x.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, h * 2, w * 2)


def pack_tokens(x: Any) -> Any:
    """``[B, C, h, w] -> [B, hw, C]`` (row-major tokens)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w).permute(0, 2, 1)


def unpack_tokens(tokens: Any, h: int, w: int) -> Any:
    """Inverse of ``pack_tokens``."""
    b, _, c = tokens.shape
    return tokens.permute(0, 2, 1).reshape(b, c, h, w)


def latent_ids(b: int, h: int, w: int, device: Any) -> Any:
    """``[B, hw, 4]`` ids ``(t=0, row, col, l=0)``."""
    import torch

    rows = torch.arange(h, device=device).repeat_interleave(w)
    cols = torch.arange(w, device=device).repeat(h)
    zero = torch.zeros_like(rows)
    return torch.stack([zero, rows, cols, zero], dim=1).unsqueeze(0).expand(b, -1, -1)


def text_ids(b: int, length: int, device: Any) -> Any:
    """``[B, L, 4]`` ids ``(0, 0, 0, l)``."""
    import torch

    l_ids = torch.arange(length, device=device)
    zero = torch.zeros_like(l_ids)
    return torch.stack([zero, zero, zero, l_ids], dim=1).unsqueeze(0).expand(b, -1, -1)


class Flux2KleinGenerator(FlowGenerator):
    """Adapter for FLUX.2-klein checkpoints (``Flux2Transformer2DModel`` + ``AutoencoderKLFlux2``)."""

    def _encode_batch(self, prompts: list[str]) -> Cond:
        """``embeds [B, L, len(layers)·D_qwen]`` via the pipeline's chat-template encoder; no pooled vector."""
        layers = tuple(self.option("text_encoder_out_layers", DEFAULT_OUT_LAYERS))
        embeds, _ = self.pipe.encode_prompt(prompt=prompts, device=self.device, num_images_per_prompt=1,
                                            max_sequence_length=int(self.option("max_sequence_length", 512)),
                                            text_encoder_out_layers=layers)
        return Cond(embeds.to(self.dtype))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        scale = self.pipe.vae_scale_factor * 2  # VAE /8, then the 2×2 patchify
        return (self.transformer.config.in_channels, self.spec.height // scale, self.spec.width // scale)

    def predict_velocity(self, x: Any, sigma: Any, cond: Cond, guidance: float = 1.0, transformer: Any = None) -> Any:
        """Velocity ``[B, 128, h, w]`` in the model dtype.

        Args:
            x: patchified, BN-normalised latents ``[B, 128, h, w]``.
            sigma: float, 0-d or ``[B]``; the model gets ``(1000σ).to(dtype)/1000``.
            cond: ``Cond`` with B rows.
            guidance: CFG scale; > 1 runs a second forward on the empty-prompt embedding (base teachers).
            transformer: a ``Flux2Transformer2DModel`` to call instead of ``self.transformer``.
        """
        net = transformer or self.transformer
        b, _, h, w = x.shape
        t = self.family.timestep_input(sigma_batch(sigma, b, x.device), self.dtype)
        tokens, ids = pack_tokens(x.to(self.dtype)), latent_ids(b, h, w, x.device)

        def forward(c: Cond) -> Any:
            out = net(hidden_states=tokens, timestep=t, guidance=None, encoder_hidden_states=c.embeds,
                      txt_ids=text_ids(b, c.embeds.shape[1], x.device), img_ids=ids, return_dict=False)[0]
            return unpack_tokens(out[:, : h * w], h, w)

        v = forward(cond)
        if guidance > 1.0:
            v = cfg_combine(forward(self.encode_uncond(b)), v, guidance)
        return v

    def denormalize(self, latents: Any) -> Any:
        """BN de-normalisation + un-patchify: ``[B, 128, h, w] -> [B, 32, 2h, 2w]`` raw VAE latents."""
        bn = self.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(latents.device, latents.dtype)
        std = (bn.running_var.view(1, -1, 1, 1) + self.vae.config.batch_norm_eps).sqrt().to(latents.device, latents.dtype)
        return unpatchify(latents * std + mean)

    def decode(self, latents: Any) -> Any:
        """``[B, 128, h, w]`` -> ``float32 [B, 3, H, W]`` in [0, 1]; gradients flow through the de-normalisation."""
        img = self.vae.decode(self.denormalize(latents.to(self.vae.dtype)), return_dict=False)[0]
        return (img.float() / 2 + 0.5).clamp(0, 1)


def seq_len(height: int, width: int, vae_scale: int = VAE_SCALE) -> int:
    """Token count ``L = H_lat·W_lat`` after the 2×2 patchify (``H_lat = H/16``)."""
    return (height // vae_scale // 2) * (width // vae_scale // 2)


def mu(seq_len: int, num_steps: int) -> float:
    """Empirical μ (§1.3): linear in L above 4300 tokens, else interpolated in the step count."""
    m200 = 0.00016927 * seq_len + 0.45666666
    if seq_len > 4300:
        return m200
    m10 = 8.73809524e-5 * seq_len + 1.89833333
    a = (m200 - m10) / 190.0
    b = m200 - 200.0 * a
    return a * num_steps + b


def shift_sigmas(us: Sequence[float], height: int, width: int, scheduler_config: Mapping[str, Any]) -> list[float]:
    """``σ = shift(u, μ(L, N))``, then stretched to ``shift_terminal`` if set: ``[1.0, 0.9674, 0.9081, 0.7672]`` at
    1024² for ``[1000, 750, 500, 250]``."""
    return dynamic_shift(us, mu(seq_len(height, width), len(us)),
                         scheduler_config.get("time_shift_type", "exponential"),
                         scheduler_config.get("shift_terminal") or None)


def euler_kwargs(steps: int, height: int, width: int, scheduler_config: Mapping[str, Any]) -> dict[str, Any]:
    """As ``Flux2KleinPipeline``: ``sigmas = linspace(1, 1/N, N)`` shifted with the empirical μ."""
    import numpy as np

    return {"sigmas": np.linspace(1.0, 1 / steps, steps), "mu": mu(seq_len(height, width), steps)}


def lora_targets(net: Any) -> list[str]:
    """The §3.1 table plus ``single_transformer_blocks.{i}.attn.to_out`` for every single block of ``net``."""
    n_single = len(getattr(net, "single_transformer_blocks", ()))
    return list(LORA_TARGETS) + [f"single_transformer_blocks.{i}.attn.to_out" for i in range(n_single)]


def build_tiny():
    """Tiny distilled ``Flux2KleinPipeline``: a 27-layer Qwen3 so the default out layers (9, 18, 27) apply."""
    import torch
    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rtdmd_bench.models.tiny import flow_scheduler
    from rtdmd_bench.tiny_tokenizers import tiny_qwen_tokenizer

    tok = tiny_qwen_tokenizer()
    qwen = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=27,
                                        num_attention_heads=2, num_key_value_heads=2, head_dim=8,
                                        max_position_embeddings=512))
    transformer = Flux2Transformer2DModel(patch_size=1, in_channels=128, num_layers=1, num_single_layers=1,
                                          attention_head_dim=16, num_attention_heads=2, joint_attention_dim=48,
                                          timestep_guidance_channels=256, axes_dims_rope=(4, 4, 4, 4),
                                          guidance_embeds=False)
    vae = AutoencoderKLFlux2(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                             block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=32,
                             norm_num_groups=2, sample_size=64, use_quant_conv=False, use_post_quant_conv=False)
    n = vae.bn.running_mean.numel()  # non-trivial BN statistics, so tests exercise the latent de-normalisation
    vae.bn.running_mean.copy_(0.1 * torch.randn(n))
    vae.bn.running_var.copy_(0.5 + torch.rand(n))
    return Flux2KleinPipeline(scheduler=flow_scheduler(True), vae=vae, text_encoder=qwen, tokenizer=tok,
                              transformer=transformer, is_distilled=True)


FLUX2_KLEIN = FAMILIES.add(FamilySpec(
    name="flux2_klein", target="rtdmd_bench.models.flux2_klein:Flux2KleinGenerator",
    description="FLUX.2-klein 4B/9B (distilled and base): Qwen3 text, BN-normalised 128-channel latents",
    pipeline_class="Flux2KleinPipeline", recognise=lambda mi, tc: mi.get("_class_name") == "Flux2KleinPipeline",
    timestep="quantized_sigma", guidance="cfg", shift_sigmas=shift_sigmas, euler_kwargs=euler_kwargs,
    lora_targets=lora_targets,
    tiny=TinyPreset("tiny-flux2", build_tiny, "FLUX.2-klein (distilled, 27-layer Qwen3)"),
    latent="[B, 128, H/16, W/16] (2×2-patchified, BN-normalised); tokens [B, HW, 128]"))
