"""FLUX.1-dev / FLUX.1-schnell (``family`` ``flux1``) over diffusers' ``FluxPipeline`` components.

* Text (§1.6): CLIP ``pooler_output`` ``[B, 768]`` plus T5 (max length 512) ``[B, 512, 4096]``.
* Latents (§1.5): spatial ``[B, 16, H/8, W/8]`` normalised as ``(z − shift)·scale``; ``predict_velocity`` packs them
  2×2 into ``[B, (h/2)(w/2), 64]`` tokens with ``img_ids = (0, row, col)`` and zero ``txt_ids``, and unpacks the output.
* Timestep: ``(1000σ).to(model dtype)/1000`` (the bf16 quantisation of P1). Guidance is the distilled guidance
  *embedding* (one forward; no unconditional branch): 1.0 for generator/fake, 3.5 for the teacher (P17).
"""

from __future__ import annotations

from typing import Any

from rtdmd_bench.flow import flux1_mu, flux1_seq_len
from rtdmd_bench.models.common import Cond, FlowGenerator, sigma_batch


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

    pipeline_class = "FluxPipeline"

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
        t = (sigma_batch(sigma, b, x.device) * 1000.0).to(self.dtype) / 1000.0
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

    def _euler_kwargs(self, steps: int) -> dict[str, Any]:
        """As ``FluxPipeline``: ``sigmas = linspace(1, 1/N, N)`` shifted with μ from the packed token count."""
        import numpy as np

        cfg = self.pipe.scheduler.config
        mu = flux1_mu(flux1_seq_len(self.spec.height, self.spec.width, self.pipe.vae_scale_factor),
                      cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096),
                      cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15))
        return {"sigmas": np.linspace(1.0, 1 / steps, steps), "mu": mu}
