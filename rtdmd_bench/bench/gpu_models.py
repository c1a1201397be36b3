"""Full-size FLUX.2-klein-4B and SD3.5-Medium pipelines from their published configs, with random weights.

The speed and memory of a network do not depend on its weight values, so the GPU benchmark builds the real
diffusers / transformers classes with the published architecture hyper-parameters (below, from the models'
``config.json`` files on the Hugging Face hub: ``black-forest-labs/FLUX.2-klein-4B``, ``Qwen/Qwen3-4B``,
``stabilityai/stable-diffusion-3.5-medium``, ``google/t5-v1_1-xxl``), directly on the device in bf16, without
downloading anything. Tokenizers are the offline byte-level ones of the tiny presets: every prompt is padded to
the model's maximum sequence length, so the compute does not depend on the tokenizer. ``tiny=True`` builds the
families' tiny presets instead (CPU, seconds), so the benchmark's code runs in CI and cannot rot.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

# black-forest-labs/FLUX.2-klein-4B transformer/config.json (3072 hidden = 24 heads x 128; 5 double + 20 single
# blocks; joint_attention_dim 7680 = 3 stacked Qwen3-4B layers x 2560).
FLUX2_KLEIN_4B_TRANSFORMER = dict(patch_size=1, in_channels=128, num_layers=5, num_single_layers=20,
                                  attention_head_dim=128, num_attention_heads=24, joint_attention_dim=7680,
                                  timestep_guidance_channels=256, mlp_ratio=3.0, axes_dims_rope=(32, 32, 32, 32),
                                  rope_theta=2000, eps=1e-6, guidance_embeds=False)
# Qwen/Qwen3-4B config.json (FLUX.2-klein-4B's text_encoder).
QWEN3_4B = dict(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False)
# stabilityai/stable-diffusion-3.5-medium transformer/config.json (MMDiT-X: 13 dual-attention layers).
SD35_MEDIUM_TRANSFORMER = dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24, attention_head_dim=64,
                               num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                               pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=384,
                               dual_attention_layers=tuple(range(13)), qk_norm="rms_norm")
# SD3.5-Medium text encoders: CLIP ViT-L/14 and OpenCLIP bigG/14 text towers (with projection), T5-XXL v1.1.
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
CLIP_G = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, projection_dim=1280, num_hidden_layers=32,
              num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu")
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
              layer_norm_epsilon=1e-6)
# stabilityai/stable-diffusion-3.5-medium vae/config.json (16 latent channels, no quant convs).
SD35_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                latent_channels=16, norm_num_groups=32, sample_size=1024, scaling_factor=1.5305, shift_factor=0.0609,
                use_quant_conv=False, use_post_quant_conv=False)
# Catalogue entries whose sampling settings the benchmark uses (4-step few-step generators, no CFG).
MODELS = {"flux2-klein-4b": "flux2-rtdmd", "sd35m": "sd35m-rtdmd"}
TINY_MODELS = {"flux2-klein-4b": "tiny-flux2", "sd35m": "tiny-sd35"}


@contextmanager
def _building(device: Any, dtype: Any):
    """Parameters are created on ``device`` in ``dtype`` (no fp32 copy on the host first)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _flux2_klein_4b(device: Any, dtype: Any):
    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from rtdmd_bench.models.tiny import flow_scheduler
    from rtdmd_bench.tiny_tokenizers import tiny_qwen_tokenizer

    with _building(device, dtype):
        transformer = Flux2Transformer2DModel(**FLUX2_KLEIN_4B_TRANSFORMER)
        text_encoder = Qwen3ForCausalLM(Qwen3Config(**QWEN3_4B))
        vae = AutoencoderKLFlux2()  # the class defaults are the published FLUX.2 VAE config
    return Flux2KleinPipeline(scheduler=flow_scheduler(True), vae=vae, text_encoder=text_encoder,
                              tokenizer=tiny_qwen_tokenizer(), transformer=transformer, is_distilled=True)


def _sd35_medium(device: Any, dtype: Any):
    from diffusers import AutoencoderKL, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from rtdmd_bench.models.tiny import flow_scheduler
    from rtdmd_bench.tiny_tokenizers import tiny_clip_tokenizer, tiny_t5_tokenizer

    tok_l, tok_g, tok_t5 = tiny_clip_tokenizer(), tiny_clip_tokenizer(), tiny_t5_tokenizer()
    with _building(device, dtype):
        transformer = SD3Transformer2DModel(**SD35_MEDIUM_TRANSFORMER)
        clip_l = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_L, bos_token_id=len(tok_l) - 2,
                                                            eos_token_id=len(tok_l) - 1, pad_token_id=len(tok_l) - 1))
        clip_g = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G, bos_token_id=len(tok_g) - 2,
                                                            eos_token_id=len(tok_g) - 1, pad_token_id=len(tok_g) - 1))
        t5 = T5EncoderModel(T5Config(**T5_XXL, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))
        vae = AutoencoderKL(**SD35_VAE)
    return StableDiffusion3Pipeline(transformer=transformer, scheduler=flow_scheduler(False), vae=vae,
                                    text_encoder=clip_l, tokenizer=tok_l, text_encoder_2=clip_g, tokenizer_2=tok_g,
                                    text_encoder_3=t5, tokenizer_3=tok_t5)


FULL_BUILDERS = {"flux2-klein-4b": _flux2_klein_4b, "sd35m": _sd35_medium}


def build_generator(model: str, device: Any, tiny: bool, height: int, width: int) -> Any:
    """The harness's adapter (``models.common.FlowGenerator``) around a freshly built pipeline; ``.pipe`` is the bare
    diffusers pipeline for the baseline. ``tiny``: the family's tiny preset at the given resolution, float32."""
    import torch

    from rtdmd_bench.models import MODELS as CATALOG
    from rtdmd_bench.models import resolve_spec
    from rtdmd_bench.models.family import FAMILIES

    name = (TINY_MODELS if tiny else MODELS)[model]
    spec = resolve_spec(name, height=height, width=width)
    family = FAMILIES.spec(spec.family)
    dtype = torch.float32 if tiny else torch.bfloat16
    with torch.no_grad():
        pipe = family.tiny.builder() if tiny else FULL_BUILDERS[model](device, dtype)
    pipe.to(device, dtype)
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval().requires_grad_(False)
    pipe.set_progress_bar_config(disable=True)
    return CATALOG.get(name)(spec, pipe, root=Path("."), device=device, dtype=dtype, lora_records=[])


def parameter_count(pipe: Any) -> dict[str, int]:
    """Parameters per pipeline component (``transformer``, ``text_encoder``...)."""
    import torch

    return {k: sum(p.numel() for p in m.parameters()) for k, m in pipe.components.items()
            if isinstance(m, torch.nn.Module)}
