"""FLUX.2-klein (distilled 4B/9B and the base teachers; ``family`` ``flux2_klein``) over ``Flux2KleinPipeline``.

* Text (§1.6): Qwen3 on the chat template (``add_generation_prompt=True``, ``enable_thinking=False``), padded to 512,
  hidden states of layers ``text_encoder_out_layers`` (default (9, 18, 27)) stacked on features; no attention mask
  reaches the transformer; text position ids ``(0, 0, 0, l)``.
* Latents (§1.5): the 2×2-patchified, BatchNorm-normalised VAE latent ``[B, 128, H/16, W/16]``; tokens are a plain
  reshape ``[B, C, h, w] -> [B, hw, C]`` with ids ``(0, row, col, 0)``. Decoding: ``x·sqrt(var+eps) + mean``,
  un-patchify to ``[B, 32, H/8, W/8]``, ``VAE.decode``.
* Timestep ``(1000σ).to(model dtype)/1000`` (P1); CFG (base teachers) is two separate forwards.
"""

from __future__ import annotations

from typing import Any

from rtdmd_bench.flow import flux2_klein_mu, flux2_seq_len
from rtdmd_bench.models.common import Cond, FlowGenerator, cfg_combine, sigma_batch

DEFAULT_OUT_LAYERS = (9, 18, 27)


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

    pipeline_class = "Flux2KleinPipeline"

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
        t = (sigma_batch(sigma, b, x.device) * 1000.0).to(self.dtype) / 1000.0
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

    def _euler_kwargs(self, steps: int) -> dict[str, Any]:
        """As ``Flux2KleinPipeline``: ``sigmas = linspace(1, 1/N, N)`` shifted with the empirical μ."""
        import numpy as np

        mu = flux2_klein_mu(flux2_seq_len(self.spec.height, self.spec.width, self.pipe.vae_scale_factor), steps)
        return {"sigmas": np.linspace(1.0, 1 / steps, steps), "mu": mu}
