"""``model.gradient_checkpointing``: same gradients, activations recomputed, generator/fake only (tiny-sd35)."""

from __future__ import annotations

import pytest
import torch

from rtdmd_bench.training.image_backbone import ImageBackbone
from rtdmd_bench.training.lora import enable_gradient_checkpointing, inject_lora


@pytest.fixture(scope="module")
def base(tiny_weights):
    from rtdmd_bench.models import build

    return build("tiny-sd35", tiny_weights)


def _lora_grads(base, checkpointing: bool) -> tuple[dict[str, torch.Tensor], int, ImageBackbone, object]:
    """One LoRA generator forward + backward of a fixed loss; returns (grads, block forward calls, bb, nets)."""
    bb = ImageBackbone(base, gradient_checkpointing=checkpointing)
    nets = bb.networks()
    gen = inject_lora(nets.generator, bb.lora_targets, rank=4, alpha=8.0, seed=0)
    with torch.no_grad():  # B != 0 so lora_A gets a gradient too
        g = torch.Generator().manual_seed(1)
        for n, p in gen.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    calls = []
    # a pre-hook: the recomputation stops early (after the last saved tensor), so a post-hook would not rerun
    hook = gen.transformer_blocks[0].register_forward_pre_hook(lambda *_: calls.append(1))
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, *bb.latent_shape, generator=g)
    cond = bb.encode(["a red cube", "a cat"])
    v = bb.velocity(gen, x, torch.tensor([0.75, 0.5]), cond)
    (v.square().mean() + v.mean()).backward()
    hook.remove()
    grads = {n: p.grad.detach().clone() for n, p in gen.named_parameters() if p.requires_grad}
    return grads, len(calls), bb, nets


def test_checkpointing_gives_the_same_gradients(base):
    off, calls_off, _, _ = _lora_grads(base, False)
    on, calls_on, _, nets = _lora_grads(base, True)
    assert off.keys() == on.keys() and len(on) > 0
    assert any("lora_A" in k for k in on)
    # every LoRA gets a gradient except the last block's context queries (its context output is discarded)
    zero = sorted(k for k, g in on.items() if g.abs().sum() == 0)
    assert all(".attn.add_q_proj." in k for k in zero) and len(zero) <= 2
    for k in off:
        torch.testing.assert_close(on[k], off[k], atol=1e-6, rtol=0)
    # recomputation really happens: the block runs again during backward
    assert calls_off == 1 and calls_on == 2


def test_flag_on_generator_and_fake_not_teacher(base):
    bb = ImageBackbone(base, gradient_checkpointing=True)
    nets = bb.networks()
    assert nets.generator.is_gradient_checkpointing and nets.fake.is_gradient_checkpointing
    assert not nets.teacher.is_gradient_checkpointing and not base.transformer.is_gradient_checkpointing
    inject_lora(nets.fake, bb.lora_targets, rank=4, alpha=8.0)  # LoRA injection keeps the block flags
    assert nets.fake.is_gradient_checkpointing
    assert not ImageBackbone(base).networks().generator.is_gradient_checkpointing


def test_no_grad_forward_is_not_checkpointed(base):
    """Rollouts run under no_grad: checkpointing must not change them (nor rerun blocks)."""
    nets = ImageBackbone(base, gradient_checkpointing=True).networks()
    x = torch.randn(1, *base.latent_shape, generator=torch.Generator().manual_seed(3))
    cond = base.encode(["a dog"])
    with torch.no_grad():
        v_ck = base.predict_velocity(x, 0.5, cond, transformer=nets.generator)
        v_ref = base.predict_velocity(x, 0.5, cond, transformer=nets.teacher)
    torch.testing.assert_close(v_ck, v_ref, atol=0, rtol=0)


def test_unsupported_module_is_a_clear_error():
    with pytest.raises(TypeError, match="gradient_checkpointing"):
        enable_gradient_checkpointing(torch.nn.Linear(2, 2))
