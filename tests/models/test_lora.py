"""LoRA stacks: reference .pt, PEFT dirs, diffusers safetensors; merge order and scale; errors (§9 item 20)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rtdmd_bench.models.lora import LoraError, merge_lora_stack, sha256_file, strip_prefixes


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList([nn.Linear(6, 4), nn.Linear(4, 4)])
        self.proj = nn.Linear(4, 3)


def _pair(out_f, in_f, r, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(r, in_f, generator=g), torch.randn(out_f, r, generator=g)


def _sd(prefix, r, seed, fmt="peft"):
    a0, b0 = _pair(4, 6, r, seed)
    a1, b1 = _pair(3, 4, r, seed + 1)
    if fmt == "peft":
        return {f"{prefix}blocks.0.lora_A.default.weight": a0, f"{prefix}blocks.0.lora_B.default.weight": b0,
                f"{prefix}proj.lora_A.weight": a1, f"{prefix}proj.lora_B.weight": b1}
    return {f"{prefix}blocks.0.lora_down.weight": a0, f"{prefix}blocks.0.lora_up.weight": b0,
            f"{prefix}blocks.0.alpha": torch.tensor(float(r)), f"{prefix}proj.lora_down.weight": a1,
            f"{prefix}proj.lora_up.weight": b1}


def _expected(net, sds_scales):
    w0, w2 = net.blocks[0].weight.detach().clone(), net.proj.weight.detach().clone()
    for sd, scale in sds_scales:
        a0, b0, a1, b1 = [v for k, v in sd.items() if not k.endswith("alpha")]
        w0 += scale * b0 @ a0
        w2 += scale * b1 @ a1
    return w0, w2


def test_stack_of_reference_pt_files_equals_sequential_additions(tmp_path):
    sd1 = _sd("module._orig_mod.base_model.model.", 32, 1)
    sd2 = _sd("base_model.model.", 32, 7)
    torch.save(sd1, tmp_path / "cold.pt")
    (tmp_path / "rl").mkdir()
    torch.save(sd2, tmp_path / "rl" / "generator_ema.pt")
    net = Net()
    w0, w2 = _expected(net, [(sd1, 64 / 32), (sd2, 64 / 32)])  # defaults r=32, alpha=64
    before = net.blocks[1].weight.detach().clone()
    recs = merge_lora_stack(net, [tmp_path / "cold.pt", tmp_path / "rl" / "generator_ema.pt"])
    torch.testing.assert_close(net.blocks[0].weight, w0, atol=1e-5, rtol=0)
    torch.testing.assert_close(net.proj.weight, w2, atol=1e-5, rtol=0)
    assert torch.equal(net.blocks[1].weight, before)  # untouched
    assert [r["merged"] for r in recs] == [2, 2] and recs[0]["sha256"] == sha256_file(tmp_path / "cold.pt")
    assert recs[0]["format"] == "pt" and (recs[0]["rank"], recs[0]["alpha"]) == (32, 64)


def test_adapter_config_sets_r_alpha_and_peft_dir(tmp_path):
    from safetensors.torch import save_file

    sd = _sd("base_model.model.", 4, 3)
    peft = tmp_path / "ckpt" / "transformer"
    peft.mkdir(parents=True)
    save_file(sd, str(peft / "adapter_model.safetensors"))
    (peft / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 2}))
    net = Net()
    w0, _ = _expected(net, [(sd, 2 / 4)])
    recs = merge_lora_stack(net, [tmp_path / "ckpt"])
    torch.testing.assert_close(net.blocks[0].weight, w0, atol=1e-6, rtol=0)
    assert recs[0]["format"] == "peft" and recs[0]["rank"] == 4


def test_diffusers_safetensors_with_per_module_alpha(tmp_path):
    """A per-module ``.alpha`` sets that module's scale alpha/r; a module without one in a safetensors file without
    alpha metadata gets alpha = r (scale 1), as diffusers' loader does."""
    from safetensors.torch import save_file

    sd = _sd("transformer.", 2, 5, fmt="kohya")
    sd["transformer.blocks.0.alpha"] = torch.tensor(1.0)
    save_file(sd, str(tmp_path / "lora.safetensors"))
    net = Net()
    w0 = net.blocks[0].weight.detach().clone() + (1 / 2) * sd["transformer.blocks.0.lora_up.weight"] @ sd[
        "transformer.blocks.0.lora_down.weight"]
    w2 = net.proj.weight.detach().clone() + 1.0 * sd["transformer.proj.lora_up.weight"] @ sd[
        "transformer.proj.lora_down.weight"]
    merge_lora_stack(net, [tmp_path / "lora.safetensors"])
    torch.testing.assert_close(net.blocks[0].weight, w0, atol=1e-6, rtol=0)
    torch.testing.assert_close(net.proj.weight, w2, atol=1e-6, rtol=0)


def test_transposed_delta_is_accepted(tmp_path):
    net = Net()
    a, b = _pair(6, 4, 2, 9)  # B@A is [6, 4]: the transpose of blocks.0.weight [4, 6]
    torch.save({"blocks.0.lora_A.weight": a, "blocks.0.lora_B.weight": b}, tmp_path / "t.pt")
    expected = net.blocks[0].weight.detach().clone() + 2.0 * (b @ a).T
    merge_lora_stack(net, [tmp_path / "t.pt"])
    torch.testing.assert_close(net.blocks[0].weight, expected, atol=1e-5, rtol=0)


def test_unmatched_keys_are_an_error_that_lists_them(tmp_path):
    torch.save(_sd("other_model.", 2, 1), tmp_path / "x.pt")
    with pytest.raises(LoraError, match=r"2 entries fit no weight.*other_model.blocks.0 \(no such module\)"):
        merge_lora_stack(Net(), [tmp_path / "x.pt"])
    torch.save({"foo": torch.zeros(1)}, tmp_path / "y.pt")
    with pytest.raises(LoraError, match="no lora_A/lora_B pairs.*foo"):
        merge_lora_stack(Net(), [tmp_path / "y.pt"])
    partial = {**_sd("", 2, 1), "text_encoder.q.lora_A.weight": torch.zeros(2, 4),
               "text_encoder.q.lora_B.weight": torch.zeros(4, 2), "blocks.1.lora_A.weight": torch.zeros(2, 4)}
    torch.save(partial, tmp_path / "p.pt")
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(LoraError, match=r"blocks.1.lora_A.weight \(not a lora_A.*text_encoder.q \(no such module\)"):
        merge_lora_stack(net, [tmp_path / "p.pt"])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # all or nothing
    bad_shape = {"blocks.0.lora_A.weight": torch.zeros(2, 5), "blocks.0.lora_B.weight": torch.zeros(4, 2)}
    torch.save(bad_shape, tmp_path / "s.pt")
    with pytest.raises(LoraError, match=r"blocks.0 \(delta \(4, 5\) vs weight \(4, 6\)\)"):
        merge_lora_stack(Net(), [tmp_path / "s.pt"])
    with pytest.raises(LoraError, match="does not exist"):
        merge_lora_stack(Net(), [tmp_path / "missing.pt"])


def test_strip_prefixes():
    assert strip_prefixes("module._orig_mod.base_model.model.transformer_blocks.0.attn.to_q.lora_A.weight") == (
        "transformer_blocks.0.attn.to_q.lora_A.weight")
    assert strip_prefixes("transformer.single_transformer_blocks.1.proj_out.lora_B.weight") == (
        "single_transformer_blocks.1.proj_out.lora_B.weight")


def test_lora_through_build_and_describe(tiny_models, tmp_path):
    from rtdmd_bench.models import build

    base = build("tiny-sd35", tiny_models)
    name = "transformer_blocks.0.attn.to_q"
    w = dict(base.transformer.named_parameters())[f"{name}.weight"]
    a, b = _pair(w.shape[0], w.shape[1], 4, 2)
    torch.save({f"base_model.model.{name}.lora_A.default.weight": a,
                f"base_model.model.{name}.lora_B.default.weight": b}, tmp_path / "g.pt")
    gen = build("tiny-sd35", tiny_models, lora=[str(tmp_path / "g.pt")])
    merged = dict(gen.transformer.named_parameters())[f"{name}.weight"]
    torch.testing.assert_close(merged, w + 2.0 * b @ a, atol=1e-5, rtol=0)
    lora = gen.describe()["lora"]
    assert lora == [{"path": str(tmp_path / "g.pt"), "sha256": sha256_file(tmp_path / "g.pt")}]
    assert not torch.allclose(gen.generate(["a cat"], [1]), base.generate(["a cat"], [1]))
