"""SD3-Medium and SD3.5 (families ``sd3`` / ``sd35``) over diffusers' ``StableDiffusion3Pipeline`` components.

* Text (§1.6): two CLIP encoders (max 77 tokens, penultimate hidden state, features concatenated, zero-padded to the
  T5 width) followed along the sequence by T5 at **max length 128**; pooled = both CLIP ``text_embeds``.
* Latents (§1.5): ``[B, 16, H/8, W/8]`` normalised as ``(z − shift_factor)·scaling_factor``.
* Model input: ``timestep = 1000·σ`` in fp32; CFG is the classic two-pass combination run as one batched forward.
* Few-step levels: the static shift ``σ = shift·u/(1 + (shift−1)·u)`` (``shift`` = 3.0 for SD3-M/SD3.5-M), rounded
  to 6 decimals: ``[1.0, 0.9, 0.75, 0.5]`` for ``[1000, 750, 500, 250]`` at any resolution.
* SD3.5 is recognised by its RMS qk-norm (``transformer/config.json`` ``qk_norm``); SD3 has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rtdmd_bench.flow import sigma_batch, static_shift
from rtdmd_bench.models.common import Cond, FlowGenerator, cfg_combine
from rtdmd_bench.models.family import FAMILIES, FamilySpec, TinyPreset

SD3_SHIFT = 3.0  # scheduler.config.shift of SD3-M and SD3.5-M
LORA_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj",
                "attn.add_v_proj", "attn.to_add_out")  # §3.1 (also FLUX.1)


class SD3Generator(FlowGenerator):
    """Adapter for SD3 / SD3.5 checkpoints (any ``SD3Transformer2DModel``)."""

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
        t = self.family.timestep_input(sigma_batch(sigma, b, x.device), self.dtype)
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


def shift_sigmas(us: Sequence[float], height: int, width: int, scheduler_config: Mapping[str, Any]) -> list[float]:
    """Static shift of every ``u`` with the scheduler's ``shift``, rounded to 6 decimals (any resolution)."""
    shift = float(scheduler_config.get("shift", SD3_SHIFT))
    return [round(static_shift(u, shift), 6) for u in us]


def lora_targets(net: Any) -> list[str]:
    return list(LORA_TARGETS)


def build_tiny(sd35: bool = False):
    """Tiny ``StableDiffusion3Pipeline``; ``sd35`` adds the SD3.5 dual-attention layer and RMS qk-norm."""
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    from rtdmd_bench.models.tiny import clip_encoder, flow_scheduler, t5_encoder, vae
    from rtdmd_bench.tiny_tokenizers import tiny_clip_tokenizer, tiny_t5_tokenizer

    extra = {"dual_attention_layers": (0,), "qk_norm": "rms_norm"} if sd35 else {}
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=64,
                                        caption_projection_dim=32, pooled_projection_dim=64, pos_embed_max_size=16,
                                        **extra)
    tok1, tok2, tok3 = tiny_clip_tokenizer(), tiny_clip_tokenizer(), tiny_t5_tokenizer()
    return StableDiffusion3Pipeline(transformer=transformer, scheduler=flow_scheduler(False),
                                    vae=vae(1.5305, 0.0609), text_encoder=clip_encoder(tok1, True), tokenizer=tok1,
                                    text_encoder_2=clip_encoder(tok2, True), tokenizer_2=tok2,
                                    text_encoder_3=t5_encoder(tok3, 64), tokenizer_3=tok3)


def _is_sd3(model_index: Mapping[str, Any], transformer: Mapping[str, Any], sd35: bool) -> bool:
    return model_index.get("_class_name") == "StableDiffusion3Pipeline" and bool(transformer.get("qk_norm")) == sd35


_COMMON = {"target": "rtdmd_bench.models.sd3:SD3Generator", "pipeline_class": "StableDiffusion3Pipeline",
           "timestep": "1000_sigma", "guidance": "cfg", "shift_sigmas": shift_sigmas, "lora_targets": lora_targets,
           "latent": "[B, 16, H/8, W/8], (z − shift)·scale"}
SD3 = FAMILIES.add(FamilySpec(
    name="sd3", description="Stable Diffusion 3 (MMDiT, CLIP-L + CLIP-G + T5, static shift 3)",
    recognise=lambda mi, tc: _is_sd3(mi, tc, sd35=False),
    tiny=TinyPreset("tiny-sd3", lambda: build_tiny(False), "SD3"), **_COMMON))
SD35 = FAMILIES.add(FamilySpec(
    name="sd35", description="Stable Diffusion 3.5 (MMDiT-X: dual attention, RMS qk-norm)",
    recognise=lambda mi, tc: _is_sd3(mi, tc, sd35=True),
    tiny=TinyPreset("tiny-sd35", lambda: build_tiny(True), "SD3.5 (dual attention, RMS qk-norm)"), **_COMMON))
