"""FLUX packing / patchify round trips and agreement with diffusers' own helpers (ALGORITHM.md §9 item 21)."""

from __future__ import annotations

import torch

from rtdmd_bench.models import flux1, flux2_klein


def test_flux1_pack_roundtrip_and_diffusers_order():
    from diffusers import FluxPipeline

    x = torch.randn(2, 16, 8, 6)
    packed = flux1.pack_latents(x)
    assert packed.shape == (2, 12, 64)
    assert torch.equal(flux1.unpack_latents(packed, 8, 6), x)
    assert torch.equal(packed, FluxPipeline._pack_latents(x, 2, 16, 8, 6))
    ids = FluxPipeline._prepare_latent_image_ids(2, 4, 3, "cpu", torch.float32)
    assert torch.equal(flux1.latent_image_ids(8, 6, "cpu", torch.float32), ids)


def test_flux2_patchify_and_tokens_roundtrip():
    from diffusers import Flux2KleinPipeline as P

    z = torch.randn(2, 32, 8, 6)
    p = flux2_klein.patchify(z)
    assert p.shape == (2, 128, 4, 3) and torch.equal(p, P._patchify_latents(z))
    assert torch.equal(flux2_klein.unpatchify(p), z) and torch.equal(P._unpatchify_latents(p), z)
    t = flux2_klein.pack_tokens(p)
    assert torch.equal(t, P._pack_latents(p)) and torch.equal(flux2_klein.unpack_tokens(t, 4, 3), p)
    assert torch.equal(flux2_klein.latent_ids(2, 4, 3, "cpu"), P._prepare_latent_ids(p))
    assert torch.equal(flux2_klein.text_ids(2, 5, "cpu"), P._prepare_text_ids(torch.zeros(2, 5, 1)))
