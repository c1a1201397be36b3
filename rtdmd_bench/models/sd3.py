"""SD3-Medium and SD3.5 (``family`` ``sd3`` / ``sd35``) over diffusers' ``StableDiffusion3Pipeline`` components.

* Text (§1.6): two CLIP encoders (max 77 tokens, penultimate hidden state, features concatenated, zero-padded to the
  T5 width) followed along the sequence by T5 at **max length 128**; pooled = both CLIP ``text_embeds``.
* Latents (§1.5): ``[B, 16, H/8, W/8]`` normalised as ``(z − shift_factor)·scaling_factor``.
* Model input: ``timestep = 1000·σ`` in fp32; CFG is the classic two-pass combination run as one batched forward.
"""

from __future__ import annotations

from typing import Any

from rtdmd_bench.models.common import Cond, FlowGenerator, cfg_combine, sigma_batch


class SD3Generator(FlowGenerator):
    """Adapter for SD3 / SD3.5 checkpoints (any ``SD3Transformer2DModel``)."""

    pipeline_class = "StableDiffusion3Pipeline"

    def _encode_batch(self, prompts: list[str]) -> Cond:
        """``embeds [B, 77+L_t5, D_t5]``, ``pooled [B, 2·P_clip]`` via the pipeline's own encoder plumbing."""
        embeds, _, pooled, _ = self.pipe.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=self.device, num_images_per_prompt=1,
            do_classifier_free_guidance=False, max_sequence_length=int(self.option("max_sequence_length", 128)))
        return Cond(embeds.to(self.dtype), pooled.to(self.dtype))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        scale = self.pipe.vae_scale_factor
        return (self.transformer.config.in_channels, self.spec.height // scale, self.spec.width // scale)

    def predict_velocity(self, x: Any, sigma: Any, cond: Cond, guidance: float = 1.0, transformer: Any = None) -> Any:
        """Velocity ``v(x_σ, σ)`` ``[B, 16, h, w]`` in the model dtype.

        Args:
            x: latents ``[B, 16, h, w]``.
            sigma: float, 0-d or ``[B]`` (already shifted); the model sees ``1000·σ`` (fp32).
            cond: ``Cond`` with B rows.
            guidance: CFG scale; > 1 adds the empty-prompt branch (one batched forward of 2B rows).
            transformer: an ``SD3Transformer2DModel`` to call instead of ``self.transformer`` (generator/fake/teacher).
        """
        net = transformer or self.transformer
        b = x.shape[0]
        t = sigma_batch(sigma, b, x.device) * 1000.0
        x_in, emb, pooled = x.to(self.dtype), cond.embeds, cond.pooled
        if guidance > 1.0:
            unc = self.encode_uncond(b)
            x_in, t = x_in.repeat(2, 1, 1, 1), t.repeat(2)
            emb, pooled = _cat(unc.embeds, emb), _cat(unc.pooled, pooled)
        v = net(hidden_states=x_in, timestep=t, encoder_hidden_states=emb, pooled_projections=pooled,
                return_dict=False)[0]
        if guidance > 1.0:
            v_uncond, v_cond = v.chunk(2)
            return cfg_combine(v_uncond, v_cond, guidance)
        return v

    def decode(self, latents: Any) -> Any:
        """``[B, 16, h, w]`` -> ``float32 [B, 3, H, W]`` in [0, 1]: ``VAE.decode(x/scale + shift)``, ``(img/2+0.5)``
        clamped. Differentiable when grad is enabled (reward back-propagation)."""
        cfg = self.vae.config
        z = latents.to(self.vae.dtype) / cfg.scaling_factor + cfg.shift_factor
        img = self.vae.decode(z, return_dict=False)[0]
        return (img.float() / 2 + 0.5).clamp(0, 1)


def _cat(a: Any, b: Any) -> Any:
    import torch

    return torch.cat([a, b])
