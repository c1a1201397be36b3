"""FLUX.1-dev / FLUX.1-schnell (``family`` ``flux1``) over diffusers' ``FluxPipeline`` components.

* Text (§1.6): CLIP ``pooler_output`` ``[B, 768]`` plus T5 (max length 512) ``[B, 512, 4096]``.
* Latents (§1.5): spatial ``[B, 16, H/8, W/8]`` normalised as ``(z − shift)·scale``; ``predict_velocity`` packs them
  2×2 into ``[B, (h/2)(w/2), 64]`` tokens with ``img_ids = (0, row, col)`` and zero ``txt_ids``, and unpacks the output.
* Timestep: ``(1000σ).to(model dtype)/1000`` (the bf16 quantisation of P1). Guidance is the distilled guidance
  *embedding* (one forward; no unconditional branch): 1.0 for generator/fake, 3.5 for the teacher (P17).
* Few-step levels: exponential shift with μ linear in the packed token count (§1.3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rtdmd_bench.flow import dynamic_shift, sigma_batch
from rtdmd_bench.models.common import Cond, FlowGenerator
from rtdmd_bench.models.family import FAMILIES, FamilySpec, TinyPreset

VAE_SCALE = 8


def pack_latents(x: Any) -> Any:
    """``[B, C, h, w] -> [B, (h/2)(w/2), 4C]``: 2×2 patches, channel-major inside a token (diffusers order)."""
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(tokens: Any, h: int, w: int) -> Any:
    """Inverse of ``pack_latents``: ``[B, (h/2)(w/2), 4C] -> [B, C, h, w]``."""
    b, _, d = tokens.shape
    return tokens.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, d // 4, h, w)


def latent_image_ids(h: int, w: int, device: Any, dtype: Any) -> Any:
    """``[(h/2)(w/2), 3]`` position ids ``(0, row, col)`` of the packed tokens."""
    import torch

    rows = torch.arange(h // 2, device=device).repeat_interleave(w // 2)
    cols = torch.arange(w // 2, device=device).repeat(h // 2)
    return torch.stack([torch.zeros_like(rows), rows, cols], dim=1).to(dtype)


class Flux1Generator(FlowGenerator):
    """Adapter for FLUX.1 checkpoints (``FluxTransformer2DModel``)."""

    def _encode_batch(self, prompts: list[str]) -> Cond:
        """``embeds [B, L_t5, D_t5]`` and ``pooled [B, D_clip]`` via the pipeline's encoder plumbing."""
        embeds, pooled, _ = self.pipe.encode_prompt(
            prompt=prompts, prompt_2=None, device=self.device, num_images_per_prompt=1,
            max_sequence_length=int(self.option("max_sequence_length", 512)))
        return Cond(embeds.to(self.dtype), pooled.to(self.dtype))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        scale = self.pipe.vae_scale_factor
        h, w = 2 * (self.spec.height // (scale * 2)), 2 * (self.spec.width // (scale * 2))
        return (self.transformer.config.in_channels // 4, h, w)

    def predict_velocity(self, x: Any, sigma: Any, cond: Cond, guidance: float = 1.0, transformer: Any = None) -> Any:
        """Velocity ``[B, 16, h, w]`` in the model dtype.

        Args:
            x: spatial latents ``[B, 16, h, w]``.
            sigma: float, 0-d or ``[B]``; the model gets ``(1000σ).to(dtype)/1000``.
            cond: ``Cond`` with B rows (the empty-prompt embedding is never used: FLUX.1 has no CFG branch).
            guidance: distilled guidance value fed to the guidance embedding (ignored by models without one).
            transformer: a ``FluxTransformer2DModel`` to call instead of ``self.transformer``.
        """
        import torch

        net = transformer or self.transformer
        b, _, h, w = x.shape
        t = self.family.timestep_input(sigma_batch(sigma, b, x.device), self.dtype)
        g = torch.full((b,), float(guidance), dtype=torch.float32, device=x.device)
        txt_ids = torch.zeros(cond.embeds.shape[1], 3, device=x.device, dtype=self.dtype)
        out = net(hidden_states=pack_latents(x.to(self.dtype)), timestep=t,
                  guidance=g if net.config.guidance_embeds else None, pooled_projections=cond.pooled,
                  encoder_hidden_states=cond.embeds, txt_ids=txt_ids,
                  img_ids=latent_image_ids(h, w, x.device, self.dtype), return_dict=False)[0]
        return unpack_latents(out, h, w)

    def decode(self, latents: Any) -> Any:
        """``[B, 16, h, w]`` -> ``float32 [B, 3, H, W]`` in [0, 1] (differentiable when grad is enabled)."""
        cfg = self.vae.config
        z = latents.to(self.vae.dtype) / cfg.scaling_factor + cfg.shift_factor
        img = self.vae.decode(z, return_dict=False)[0]
        return (img.float() / 2 + 0.5).clamp(0, 1)


def seq_len(height: int, width: int, vae_scale: int = VAE_SCALE) -> int:
    """Packed token count ``L = (H_lat/2)·(W_lat/2)`` with ``H_lat = H/8``."""
    return (height // vae_scale // 2) * (width // vae_scale // 2)


def mu(seq_len: int, base_seq_len: int = 256, max_seq_len: int = 4096, base_shift: float = 0.5,
       max_shift: float = 1.15) -> float:
    """Dynamic μ, linear in the token count: ``μ = 0.5 + (1.15−0.5)/(4096−256)·(L − 256)``."""
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return base_shift + slope * (seq_len - base_seq_len)


def shift_sigmas(us: Sequence[float], height: int, width: int, scheduler_config: Mapping[str, Any]) -> list[float]:
    """``σ = shift(u, μ(L))`` with the reference's μ constants (§1.3): ``[1.0, 0.8492, 0.6525, 0.3849]`` at 512²."""
    return dynamic_shift(us, mu(seq_len(height, width)), scheduler_config.get("time_shift_type", "exponential"),
                         scheduler_config.get("shift_terminal") or None)


def euler_kwargs(steps: int, height: int, width: int, scheduler_config: Mapping[str, Any]) -> dict[str, Any]:
    """As ``FluxPipeline``: ``sigmas = linspace(1, 1/N, N)`` shifted with μ from the packed token count (the
    scheduler config's μ constants)."""
    import numpy as np

    cfg = scheduler_config
    m = mu(seq_len(height, width), cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096),
           cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15))
    return {"sigmas": np.linspace(1.0, 1 / steps, steps), "mu": m}


def lora_targets(net: Any) -> list[str]:
    from rtdmd_bench.models.sd3 import LORA_TARGETS

    return list(LORA_TARGETS)


def build_tiny():
    """Tiny ``FluxPipeline`` (FLUX.1-dev layout: guidance embedding on)."""
    from diffusers import FluxPipeline, FluxTransformer2DModel

    from rtdmd_bench.models.tiny import clip_encoder, flow_scheduler, t5_encoder, vae
    from rtdmd_bench.tiny_tokenizers import tiny_clip_tokenizer, tiny_t5_tokenizer

    transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    tok1, tok2 = tiny_clip_tokenizer(), tiny_t5_tokenizer()
    return FluxPipeline(transformer=transformer, scheduler=flow_scheduler(True), vae=vae(0.3611, 0.1159),
                        text_encoder=clip_encoder(tok1, False), tokenizer=tok1,
                        text_encoder_2=t5_encoder(tok2, 32), tokenizer_2=tok2)


FLUX1 = FAMILIES.add(FamilySpec(
    name="flux1", target="rtdmd_bench.models.flux1:Flux1Generator",
    description="FLUX.1 (dev/schnell): MMDiT + single blocks, CLIP-L + T5, guidance embedding, dynamic shift",
    pipeline_class="FluxPipeline", recognise=lambda mi, tc: mi.get("_class_name") == "FluxPipeline",
    timestep="quantized_sigma", guidance="embedded", shift_sigmas=shift_sigmas, euler_kwargs=euler_kwargs,
    lora_targets=lora_targets, tiny=TinyPreset("tiny-flux1", build_tiny, "FLUX.1-dev (guidance embedding)"),
    latent="[B, 16, H/8, W/8] packed 2×2 into [B, HW/4, 64] tokens inside predict_velocity"))
