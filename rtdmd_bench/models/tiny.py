"""Tiny random generators of the real architectures, written in the production layout (ENVIRONMENT.md §2-3).

Each family's ``FamilySpec.tiny`` builds its pipeline from the real diffusers / transformers classes with tiny
configs and in-memory tokenizers (no network), from the shared tiny components below. ``write_tiny_models(root)``
``save_pretrained``s every family's preset into ``root / spec.weights_dir`` of its catalogue entry, so the
production loaders read them unchanged. The latent channel counts are the real ones (16 for SD3/FLUX.1,
32 -> 128 patchified for FLUX.2); 64x64 images.
"""

from __future__ import annotations

from pathlib import Path


def clip_encoder(tok, with_projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    v = len(tok)
    cfg = CLIPTextConfig(vocab_size=v, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                         projection_dim=32, max_position_embeddings=77, bos_token_id=v - 2, eos_token_id=v - 1,
                         pad_token_id=v - 1)
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg)


def t5_encoder(tok, d_model: int):
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(vocab_size=len(tok), d_model=d_model, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return T5EncoderModel(cfg)


def vae(scaling: float, shift: float):
    from diffusers import AutoencoderKL

    # 4 blocks so vae_scale_factor = 8 as in the real models
    return AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=16, norm_num_groups=2,
                         sample_size=64, shift_factor=shift, scaling_factor=scaling, use_quant_conv=False,
                         use_post_quant_conv=False)


def flow_scheduler(dynamic: bool):
    from diffusers import FlowMatchEulerDiscreteScheduler

    if not dynamic:
        return FlowMatchEulerDiscreteScheduler(shift=3.0)
    return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096,
                                           time_shift_type="exponential")


def write_tiny_models(root: str | Path) -> list[Path]:
    """Save every family's tiny pipeline under ``root / MODELS.spec(preset).weights_dir``; returns the folders.

    Families are built in registration order from one random stream (the caller seeds it), so a family added
    later never changes the weights of the existing ones.
    """
    import torch

    from rtdmd_bench.models import MODELS
    from rtdmd_bench.models.family import FAMILIES

    written = []
    for fam in FAMILIES.in_registration_order():
        if fam.tiny is None:
            continue
        with torch.no_grad():
            pipe = fam.tiny.builder()
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.eval()  # config-built modules start in train mode (T5 dropout)
        out = Path(root) / MODELS.spec(fam.tiny.name).weights_dir
        pipe.save_pretrained(out)
        written.append(out)
    return written
