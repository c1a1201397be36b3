"""Tiny random generators of the real architectures, written in the production layout (ENVIRONMENT.md §2-3).

``write_tiny_models(root)`` builds one SD3, SD3.5, FLUX.1-dev and FLUX.2-klein pipeline from the real diffusers /
transformers classes with tiny configs and in-memory tokenizers (no network), and ``save_pretrained``s each into
``root / spec.weights_dir`` of the ``tiny-*`` catalog entries, so the production loaders read them unchanged.
The latent channel counts are the real ones (16 for SD3/FLUX.1, 32 -> 128 patchified for FLUX.2); 64x64 images.
"""

from __future__ import annotations

from pathlib import Path

from rtdmd_bench.tiny_tokenizers import tiny_clip_tokenizer, tiny_qwen_tokenizer, tiny_t5_tokenizer


def _clip_encoder(tok, with_projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    v = len(tok)
    cfg = CLIPTextConfig(vocab_size=v, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                         projection_dim=32, max_position_embeddings=77, bos_token_id=v - 2, eos_token_id=v - 1,
                         pad_token_id=v - 1)
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg)


def _t5_encoder(tok, d_model: int):
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(vocab_size=len(tok), d_model=d_model, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(cfg)


def _vae(scaling: float, shift: float):
    from diffusers import AutoencoderKL

    # 4 blocks so vae_scale_factor = 8 as in the real models
    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=16, norm_num_groups=2,
                         sample_size=64, shift_factor=shift, scaling_factor=scaling, use_quant_conv=False,
                         use_post_quant_conv=False)


def _flow_scheduler(dynamic: bool):
    from diffusers import FlowMatchEulerDiscreteScheduler

    if not dynamic:
        return FlowMatchEulerDiscreteScheduler(shift=3.0)
    return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096,
                                           time_shift_type="exponential")


def build_tiny_sd3(sd35: bool = False):
    """Tiny ``StableDiffusion3Pipeline``; ``sd35`` adds the SD3.5 dual-attention layer and RMS qk-norm."""
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    extra = {"dual_attention_layers": (0,), "qk_norm": "rms_norm"} if sd35 else {}
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=64,
                                        caption_projection_dim=32, pooled_projection_dim=64, pos_embed_max_size=16,
                                        **extra)
    tok1, tok2, tok3 = tiny_clip_tokenizer(), tiny_clip_tokenizer(), tiny_t5_tokenizer()
    return StableDiffusion3Pipeline(transformer=transformer, scheduler=_flow_scheduler(False),
                                    vae=_vae(1.5305, 0.0609), text_encoder=_clip_encoder(tok1, True), tokenizer=tok1,
                                    text_encoder_2=_clip_encoder(tok2, True), tokenizer_2=tok2,
                                    text_encoder_3=_t5_encoder(tok3, 64), tokenizer_3=tok3)


def build_tiny_flux1():
    """Tiny ``FluxPipeline`` (FLUX.1-dev layout: guidance embedding on)."""
    from diffusers import FluxPipeline, FluxTransformer2DModel

    transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    tok1, tok2 = tiny_clip_tokenizer(), tiny_t5_tokenizer()
    return FluxPipeline(transformer=transformer, scheduler=_flow_scheduler(True), vae=_vae(0.3611, 0.1159),
                        text_encoder=_clip_encoder(tok1, False), tokenizer=tok1,
                        text_encoder_2=_t5_encoder(tok2, 32), tokenizer_2=tok2)


def build_tiny_flux2_klein():
    """Tiny distilled ``Flux2KleinPipeline``: a 27-layer Qwen3 so the default out layers (9, 18, 27) apply."""
    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

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
    _randomise_bn(vae)
    return Flux2KleinPipeline(scheduler=_flow_scheduler(True), vae=vae, text_encoder=qwen, tokenizer=tok,
                              transformer=transformer, is_distilled=True)


def _randomise_bn(vae) -> None:
    """Non-trivial BN statistics so the FLUX.2 latent de-normalisation is actually exercised by tests."""
    import torch

    n = vae.bn.running_mean.numel()
    vae.bn.running_mean.copy_(0.1 * torch.randn(n))
    vae.bn.running_var.copy_(0.5 + torch.rand(n))


BUILDERS = {
    "tiny-sd3": lambda: build_tiny_sd3(False),
    "tiny-sd35": lambda: build_tiny_sd3(True),
    "tiny-flux1": build_tiny_flux1,
    "tiny-flux2": build_tiny_flux2_klein,
}


def write_tiny_models(root: str | Path) -> list[Path]:
    """Save every tiny pipeline under ``root / MODELS.spec(name).weights_dir``; returns the folders written."""
    import torch

    from rtdmd_bench.models import MODELS

    written = []
    for name, build in BUILDERS.items():
        with torch.no_grad():
            pipe = build()
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.eval()  # config-built modules start in train mode (T5 dropout)
        out = Path(root) / MODELS.spec(name).weights_dir
        pipe.save_pretrained(out)
        written.append(out)
    return written
