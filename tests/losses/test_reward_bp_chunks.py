"""``bp_batch_size`` (§4.7): chunked decode + scoring gives the unchunked BP loss and gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rtdmd_bench.losses.reward_bp import reward_bp_loss


class Decoder(nn.Module):
    """A small frozen latent -> image decoder (2x upsample, conv, sigmoid): images [B, 3, 2h, 2w] in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(4, 3, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(nn.functional.interpolate(z, scale_factor=2.0)))


def _run(decode, rewards, x, v0, sigma, chunk, prompts, **kw):
    v = v0.clone().requires_grad_(True)
    loss, metrics = reward_bp_loss(x, v, sigma, 0.0, decode, rewards, prompts, bp_batch_size=chunk, **kw)
    (3.0 * loss).backward()  # a scaled downstream use: the surrogate must carry the exact gradient
    return loss.detach(), v.grad, metrics


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_equals_unchunked_with_a_decoder_module(chunk):
    from rtdmd_bench.rewards import build

    rewards = {"saturation": (build("saturation"), 2.0)}
    g = torch.Generator().manual_seed(0)
    x, v0 = torch.randn(5, 4, 4, 4, generator=g), torch.randn(5, 4, 4, 4, generator=g)
    sigma = torch.tensor([0.5, 0.25, 0.5, 0.75, 0.5])
    prompts = [f"p{i}" for i in range(5)]
    # margin 0.9 with R = 2·saturation: the hinge is active for some samples and not for others
    ref_loss, ref_grad, ref_m = _run(Decoder(), rewards, x, v0, sigma, 0, prompts, margin=0.9, scale=0.1)
    loss, grad, m = _run(Decoder(), rewards, x, v0, sigma, chunk, prompts, margin=0.9, scale=0.1)
    assert ref_grad.abs().sum() > 0
    torch.testing.assert_close(loss, ref_loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=0)
    assert m.keys() == ref_m.keys()
    for k in m:
        torch.testing.assert_close(m[k], ref_m[k], atol=1e-6, rtol=0)


def test_chunked_leaves_frozen_modules_without_grad():
    from rtdmd_bench.rewards import build

    dec = Decoder()
    dec.conv.weight.requires_grad_(True)  # even a trainable-looking decoder weight must not collect .grad here
    rewards = {"saturation": (build("saturation"), 1.0)}
    g = torch.Generator().manual_seed(1)
    x, v0 = torch.randn(4, 4, 4, 4, generator=g), torch.randn(4, 4, 4, 4, generator=g)
    v = v0.clone().requires_grad_(True)
    reward_bp_loss(x, v, 0.5, 0.0, dec, rewards, ["a"] * 4, bp_batch_size=2)
    assert dec.conv.weight.grad is None


def test_chunked_under_no_grad_gives_the_value():
    from rtdmd_bench.rewards import build

    rewards = {"saturation": (build("saturation"), 1.0)}
    g = torch.Generator().manual_seed(2)
    x, v = torch.randn(3, 4, 4, 4, generator=g), torch.randn(3, 4, 4, 4, generator=g)
    with torch.no_grad():
        a, ma = reward_bp_loss(x, v, 0.5, 0.0, Decoder(), rewards, ["a"] * 3, scale=1.0)
        b, mb = reward_bp_loss(x, v, 0.5, 0.0, Decoder(), rewards, ["a"] * 3, scale=1.0, bp_batch_size=2)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(ma["bp_reward"], mb["bp_reward"], atol=1e-6, rtol=0)


def test_chunked_tiny_vae_and_neural_reward(tiny_weights):
    """The real path: tiny-sd35 VAE decode and the tiny CLIP-score scorer, 3 samples in chunks of 2."""
    from rtdmd_bench.models import build as build_model
    from rtdmd_bench.rewards import build

    gen = build_model("tiny-sd35", tiny_weights)
    rewards = {"clipscore": (build("clipscore", weights=tiny_weights), 1.0),
               "saturation": (build("saturation"), 0.5)}
    g = torch.Generator().manual_seed(3)
    x, v0 = torch.randn(3, *gen.latent_shape, generator=g), torch.randn(3, *gen.latent_shape, generator=g)
    prompts = ["a red cube", "a cat", "a dog"]
    ref_loss, ref_grad, _ = _run(gen.decode, rewards, x, v0, 0.5, 0, prompts, scale=1.0)
    loss, grad, _ = _run(gen.decode, rewards, x, v0, 0.5, 2, prompts, scale=1.0)
    assert ref_grad.abs().sum() > 0
    torch.testing.assert_close(loss, ref_loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=1e-5)
