"""Gradient checkpointing under DDP and FSDP2 (2 CPU processes, gloo): the averaged/gathered LoRA gradients of a
checkpointed, wrapped generator equal one process's non-checkpointed gradients of the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# Each rank: LoRA generator with checkpointing, wrapped by parallel.wrap, loss = mean over its 1-sample slice of
# the global batch of 2; DDP averages the gradients, FSDP2 reduce-scatters the mean: both = grad of the global mean.
WORKER = r'''
import sys, torch
from rtdmd_bench.models import build
from rtdmd_bench import parallel
from rtdmd_bench.training.image_backbone import ImageBackbone
from rtdmd_bench.training.lora import inject_lora

root, out = sys.argv[1:3]
torch.set_num_threads(1)
dist = parallel.init("cpu")
base = build("tiny-sd35", root)
result = {}
for strategy in ("ddp", "fsdp"):  # one launch for both (process start-up dominates on CPU)
    bb = ImageBackbone(base, gradient_checkpointing=True)
    gen = inject_lora(bb.networks().generator, bb.lora_targets, rank=4, alpha=8.0, seed=0)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for n, p in gen.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    net = parallel.wrap(gen, dist, strategy)
    x = torch.randn(2, *bb.latent_shape, generator=torch.Generator().manual_seed(2))
    sig, prompts = torch.tensor([0.75, 0.5]), ["a red cube", "a cat"]
    r = dist.rank
    v = bb.velocity(net, x[r:r + 1], sig[r:r + 1], bb.encode(prompts[r:r + 1]))
    (v.square().mean() + v.mean()).backward()
    grads = {}
    for n, p in net.named_parameters():
        if p.requires_grad:
            gr = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            grads[n.removeprefix("module.")] = gr.detach().cpu()  # DDP prefixes names; FSDP2 does not
    result[strategy] = {"grads": grads, "checkpointing": parallel.unwrap(net).is_gradient_checkpointing,
                        "sharded": any(hasattr(p, "device_mesh") for p in net.parameters())}
if dist.is_main:
    torch.save(result, out)
parallel.shutdown()
'''


def _reference(root: str) -> dict[str, torch.Tensor]:
    from rtdmd_bench.models import build
    from rtdmd_bench.training.image_backbone import ImageBackbone
    from rtdmd_bench.training.lora import inject_lora

    bb = ImageBackbone(build("tiny-sd35", root), gradient_checkpointing=False)
    gen = inject_lora(bb.networks().generator, bb.lora_targets, rank=4, alpha=8.0, seed=0)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for n, p in gen.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    x = torch.randn(2, *bb.latent_shape, generator=torch.Generator().manual_seed(2))
    sig, prompts = torch.tensor([0.75, 0.5]), ["a red cube", "a cat"]
    loss = sum(0.5 * (v.square().mean() + v.mean()) for v in
               (bb.velocity(gen, x[i:i + 1], sig[i:i + 1], bb.encode(prompts[i:i + 1])) for i in range(2)))
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in gen.named_parameters() if p.requires_grad}


@pytest.mark.slow
def test_checkpointing_under_ddp_and_fsdp2(tiny_weights, tmp_path):
    script, out = tmp_path / "worker.py", tmp_path / "grads.pt"
    script.write_text(WORKER)
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), tiny_weights,
                           str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = torch.load(out, weights_only=True)
    ref = _reference(tiny_weights)
    assert result["fsdp"]["sharded"] and not result["ddp"]["sharded"]
    for strategy, got in result.items():
        assert got["checkpointing"], strategy
        assert got["grads"].keys() == ref.keys(), strategy
        for k, g in ref.items():
            torch.testing.assert_close(got["grads"][k], g, atol=1e-6, rtol=1e-5, msg=f"{strategy}: {k}")
