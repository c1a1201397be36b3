"""Every registered family's tiny preset through the production adapter: diffusers parity, seeding, cache,
gradients, errors (a new family is tested here by registering it)."""

from __future__ import annotations

import pytest
import torch

from rtdmd_bench.models import build
from rtdmd_bench.models.family import FAMILIES
from rtdmd_bench.weights import MissingWeightsError

TINY = tuple(f.tiny.name for f in FAMILIES.in_registration_order() if f.tiny is not None)

PROMPTS = ["a photo of a cat", "the dog", "a painting of the sea"]
SEEDS = [11, 22, 33]


def _pipeline_call(gen, prompts, seeds, steps, sigmas=None, guidance=1.0):
    """The diffusers pipeline's own sampler on the adapter's components (same latents from the same generators)."""
    kwargs = {"text_encoder_out_layers": (9, 18, 27)} if gen.spec.family == "flux2_klein" else {}
    return gen.pipe(prompt=prompts, num_inference_steps=steps, sigmas=sigmas, height=64, width=64, output_type="pt",
                    guidance_scale=guidance, max_sequence_length=32,
                    generator=[torch.Generator().manual_seed(s) for s in seeds], **kwargs).images


@pytest.mark.parametrize("name", TINY)
def test_eta0_matches_diffusers_euler_on_same_sigmas(tiny_models, name):
    from diffusers import FlowMatchEulerDiscreteScheduler

    gen = build(name, tiny_models, eta=0.0)
    ours = gen.generate(PROMPTS[:2], SEEDS[:2])
    sigmas = gen.sigmas
    gen.pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)  # takes the given sigmas as they are
    ref = _pipeline_call(gen, PROMPTS[:2], SEEDS[:2], 4, sigmas=sigmas[:-1])
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("name", "guidance"), [("tiny-sd3", 3.0), ("tiny-flux1", 3.5), ("tiny-flux2", 4.0)])
def test_teacher_euler_cfg_matches_diffusers(tiny_models, name, guidance):
    gen = build(name, tiny_models, sampler="euler_cfg", steps=3, guidance=guidance)
    if gen.spec.family == "flux2_klein":
        gen.pipe.register_to_config(is_distilled=False)  # a base (teacher) checkpoint runs two-pass CFG
    ours = gen.generate(PROMPTS[:2], SEEDS[:2])
    ref = _pipeline_call(gen, PROMPTS[:2], SEEDS[:2], 3, guidance=guidance)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    assert gen.describe()["nfe"] == (3 if name == "tiny-flux1" else 6)


@pytest.mark.parametrize("name", TINY)
def test_image_depends_only_on_prompt_and_seed(generators, name):
    gen = generators[name]
    batch = gen.generate(PROMPTS, SEEDS)
    alone = gen.generate(PROMPTS[1:2], SEEDS[1:2])
    reordered = gen.generate([PROMPTS[2], PROMPTS[1]], [SEEDS[2], SEEDS[1]])
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == torch.float32
    assert 0 <= float(batch.min()) and float(batch.max()) <= 1
    # identical up to the reduction order of batched CPU kernels (~1e-6 in fp32); the noise itself is bitwise equal
    torch.testing.assert_close(alone[0], batch[1], atol=2e-5, rtol=0)
    torch.testing.assert_close(reordered[1], batch[1], atol=2e-5, rtol=0)
    assert torch.equal(gen.initial_noise(SEEDS)[1], gen.initial_noise(SEEDS[1:2])[0])
    other_seed = gen.generate(PROMPTS[1:2], [999])
    assert not torch.allclose(other_seed[0], batch[1])


def test_cps_noise_is_drawn_per_step(generators):
    gen = generators["tiny-sd35"]
    stochastic = gen.generate(PROMPTS[:1], SEEDS[:1])
    ode = gen.generate(PROMPTS[:1], SEEDS[:1], eta=0.0)
    assert not torch.allclose(stochastic, ode)  # eta 0.9 really injects noise on steps 0..2


@pytest.mark.parametrize("name", TINY)
def test_describe(generators, name):
    d = generators[name].describe()
    assert d["name"] == name and d["tiny"] is True and d["lora"] == [] and d["nfe"] == 4
    assert d["sigmas"][-1] == 0.0 and len(d["sigmas"]) == 5 and d["sigmas"][0] == 1.0
    assert (d["height"], d["width"], d["eta"], d["sampler"], d["dtype"]) == (64, 64, 0.9, "cps", "float32")
    if name in ("tiny-sd3", "tiny-sd35"):
        assert d["sigmas"] == [1.0, 0.9, 0.75, 0.5, 0.0]


def test_encode_cache_counts(tiny_models):
    gen = build("tiny-flux2", tiny_models)
    c = gen.encode(["a", "b", "a"])
    assert len(c) == 3 and gen.cache_info() == {"hits": 1, "misses": 2, "encoder_calls": 1, "size": 2}
    torch.testing.assert_close(c.embeds[0], c.embeds[2], atol=0, rtol=0)
    gen.encode(["b", "a"])
    assert gen.cache_info()["hits"] == 3 and gen.cache_info()["encoder_calls"] == 1
    u = gen.encode_uncond(4)
    assert len(u) == 4 and gen.cache_info()["misses"] == 3
    alone = gen._encode_batch(["b"])  # a cached row equals a fresh batch-of-one encoding
    torch.testing.assert_close(gen.encode(["b"]).embeds, alone.embeds, atol=1e-6, rtol=0)


def test_cache_is_lru_bounded(tiny_models):
    gen = build("tiny-sd3", tiny_models, extra=(("max_sequence_length", 32), ("prompt_cache_size", 2)))
    gen.encode(["a", "b", "c"])
    assert gen.cache_info()["size"] == 2


@pytest.mark.parametrize("name", TINY)
def test_decode_keeps_gradients(generators, name):
    gen = generators[name]
    x = gen.initial_noise([5]).requires_grad_(True)
    gen.decode(x).mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", TINY)
def test_predict_velocity_batched_sigma_and_override(generators, name):
    import copy

    gen = generators[name]
    x, cond = gen.initial_noise([1, 2]), gen.encode(PROMPTS[:2])
    sig = torch.tensor([0.9, 0.5])
    v = gen.predict_velocity(x, sig, cond)
    v1 = gen.predict_velocity(x[1:], 0.5, cond.select([1]))
    assert v.shape == x.shape
    torch.testing.assert_close(v[1:], v1, atol=1e-5, rtol=0)
    other = copy.deepcopy(gen.transformer)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert not torch.allclose(gen.predict_velocity(x, sig, cond, transformer=other), v)


def test_overrides_and_errors(tiny_models, tmp_path):
    gen = build("tiny-sd3", tiny_models, steps=2)
    assert gen.spec.step_list == (1000.0, 500.0) and gen.sigmas == [1.0, 0.75, 0.0]
    with pytest.raises(TypeError, match="unknown model override"):
        build("tiny-sd3", tiny_models, stepz=3)
    with pytest.raises(MissingWeightsError, match="rtdmd-bench weights fetch tiny-flux2"):
        build("tiny-flux2", tmp_path)
    with pytest.raises(MissingWeightsError, match="nope.pt"):
        build("tiny-sd3", tiny_models, lora=["loras/nope.pt"])


def test_flux_latent_layouts(generators):
    assert generators["tiny-flux1"].latent_shape == (16, 8, 8)
    assert generators["tiny-flux2"].latent_shape == (128, 4, 4)
    assert generators["tiny-sd3"].latent_shape == (16, 8, 8)


def test_teacher_entry_exposes_cps_schedule(tiny_models):
    gen = build("tiny-sd3", tiny_models, sampler="euler_cfg", steps=6, guidance=4.0)
    assert len(gen.sigmas) == 7 and gen.sigmas[-1] == 0.0
    assert gen.cps_sigmas() == [1.0, 0.9, 0.75, 0.5, 0.0]
    assert gen.cps_sigmas([1000, 500]) == [1.0, 0.75, 0.0]
