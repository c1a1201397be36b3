"""Acceptance tests of the trainers on the tiny presets (CPU, no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from rtdmd_bench import config
from rtdmd_bench.cli.train import resolve_config, train
from rtdmd_bench.registry import import_target
from rtdmd_bench.training.registry import STAGES

REPO = Path(__file__).resolve().parents[2]


def _cli(args: list[str]):
    app = typer.Typer()
    app.command()(train)
    return CliRunner().invoke(app, args)


def _ckpt(out: Path, step: int) -> dict:
    return torch.load(out / "checkpoints" / f"checkpoint-{step}" / "state.pt", weights_only=False)


def _last_block(sess) -> int:
    return len(sess.teacher.transformer_blocks) - 1


def _strip(k: str) -> str:
    return k.replace("module.", "")


@pytest.mark.parametrize("stage,model", [(1, "tiny-sd35"), (1, "tiny-flux2"), (2, "tiny-sd35"), (2, "tiny-flux2")])
def test_train_tiny(stage, model, tiny_weights, tmp_path):
    from rtdmd_bench.models import build

    spec, cfg, path = resolve_config(STAGES[stage], model, None, [], 2)
    assert path is not None and path.name == model.replace("-", "_") + ".yaml"
    sess = import_target(spec.target)(cfg, config.to_dict(cfg), weights="tiny", out=str(tmp_path))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert all(v is not None for v in r.values()), r  # None = non-finite
        assert "loss_fake" in r and "loss_dmd" in r and any(k.startswith("time/") for k in r)
        if stage == 2:
            assert {"loss_bp", "clip_frac", "adv/std", "adv/kept", "reward/clipscore", "grad_norm/generator"} <= set(r)
            assert r["bp/hinge_active"] == 1.0 and r["adv/share/clipscore"] + r["adv/share/saturation"] == \
                pytest.approx(1.0) and r["reward_spread/clipscore"] > 0
        # every configured term contributes a gradient, logged each step (stage 1: dm on its generator updates)
        terms = ("pg", "dm", "bp", "fake", "consistency") if stage == 2 else ("dm", "fake", "consistency")
        assert all(r[f"grad_norm/term/{t}"] > 0 for t in terms), r
    c1, c2 = _ckpt(tmp_path, 1), _ckpt(tmp_path, 2)
    for net in ("generator", "fake"):
        assert c2["nets"][net], net
        for k, v in c2["nets"][net].items():
            assert torch.isfinite(v).all()
            # SD3's last joint block is context_pre_only: its text-query projection cannot affect the output,
            # so the LoRA the reference puts on it (§3.1 target list) never gets a gradient.
            dead = stage and model.startswith("tiny-sd3") and f"blocks.{_last_block(sess)}.attn.add_q_proj" in k
            assert dead or not torch.equal(v, c1["nets"][net][k]), (net, k)
    fresh = build(model, weights="tiny").transformer.state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in sess.teacher.state_dict().items())
    for net in (sess.gen, sess.fake):
        frozen = {_strip(k).replace(".base_layer", ""): p for k, p in net.named_parameters() if not p.requires_grad}
        assert frozen and all(torch.equal(p, fresh[k]) for k, p in frozen.items())
    lora = tmp_path / "lora" / "generator_ema.pt"
    assert lora.is_file() and (tmp_path / "lora" / "adapter_config.json").is_file()
    merged = build(model, weights="tiny", lora=[str(lora)])  # the eval harness's loader accepts the export
    assert any(not torch.equal(v, fresh[k]) for k, v in merged.transformer.state_dict().items())
    record = json.loads((tmp_path / "lora" / "training.json").read_text())
    assert record["stage"] == stage and record["steps"] == 2 and record["base_model"] == model
    trained_on = merged.describe().get("training_rewards", [])
    expected = {**record["rewards"], **record.get("bp_rewards", {})} if stage == 2 else {}
    assert sorted(trained_on) == sorted(expected)  # what compare's reward-hacking check reads
    if stage == 2:
        assert "clipscore" in trained_on


def test_resume_continues_the_same_trajectory(tiny_weights, tmp_path):
    base = ["--stage", "1", "--model", "tiny-sd35", "--weights", "tiny", "--set", "train.console_every=0"]
    full, split = tmp_path / "full", tmp_path / "split"
    assert _cli(base + ["--steps", "4", "--out", str(full)]).exit_code == 0
    assert _cli(base + ["--steps", "2", "--out", str(split)]).exit_code == 0
    res = _cli(base + ["--steps", "4", "--out", str(split), "--resume"])
    assert res.exit_code == 0, res.output
    a, b = _ckpt(full, 4), _ckpt(split, 4)
    for net in a["nets"]:
        for k, v in a["nets"][net].items():
            assert torch.allclose(v, b["nets"][net][k], atol=1e-6, rtol=0), (net, k)
    for k, v in a["emas"]["generator"]["shadow"].items():
        assert torch.allclose(v, b["emas"]["generator"]["shadow"][k], atol=1e-6, rtol=0)
    assert len((split / "metrics.jsonl").read_text().splitlines()) == 4
    changed = _cli(base + ["--steps", "6", "--out", str(split), "--resume", "--set", "batch_size=3"])
    assert changed.exit_code == 2 and "different config" in changed.output


@pytest.mark.parametrize("sets,message", [
    (["rewards={clipscor: 1.0}"], "Did you mean 'clipscore'"),
    (["bp.rewards={jpeg_compressibility: 1.0}"], "differentiable"),
    (["sampling.k=3"], "must divide"),
    (["train.stpes=3"], "Did you mean 'train.steps'"),
])
def test_bad_input_fails_before_any_model_loads(sets, message, monkeypatch):
    import rtdmd_bench.models

    def _no_load(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(rtdmd_bench.models, "build", _no_load)
    args = ["--stage", "2", "--model", "tiny-sd35", "--weights", "tiny"]
    for s in sets:
        args += ["--set", s]
    res = _cli(args)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output


def _torchrun(args: list[str], out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "rtdmd_bench", "train", "--weights", "tiny",
           "--out", str(out), "--set", "train.console_every=0", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_ddp_two_processes_equal_one_process(tiny_weights, tmp_path):
    _torchrun(["--stage", "1", "--model", "tiny-sd35", "--set", "batch_size=1"], tmp_path / "ddp")
    spec, cfg, _ = resolve_config("stage1_acdmd", "tiny-sd35", None, ["batch_size=2"], None)
    import_target(spec.target)(cfg, config.to_dict(cfg), weights="tiny", out=str(tmp_path / "one"))
    a, b = _ckpt(tmp_path / "one", 2), _ckpt(tmp_path / "ddp", 2)
    assert b["world"] == 2
    for net in a["nets"]:
        other = {_strip(k): v for k, v in b["nets"][net].items()}
        for k, v in a["nets"][net].items():
            assert torch.allclose(v, other[_strip(k)], atol=1e-5, rtol=0), (net, k)


@pytest.mark.slow
def test_fsdp2_stage2_runs(tiny_weights, tmp_path):
    out = tmp_path / "fsdp"
    _torchrun(["--stage", "2", "--model", "tiny-sd35", "--steps", "1", "--set", "sampling.batch_size=2",
               "--set", "train.parallel=fsdp"], out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and all(v is not None for v in rows[0].values())
    state = _ckpt(out, 1)
    assert state["world"] == 2 and all(torch.isfinite(v).all() for v in state["nets"]["generator"].values())
    assert (out / "lora" / "generator_ema.pt").is_file()


def test_periodic_eval_calls_the_harness(tiny_weights, tmp_path):
    res = _cli(["--stage", "1", "--model", "tiny-sd35", "--weights", "tiny", "--steps", "1", "--out", str(tmp_path),
                "--set", "eval.enabled=true", "--set", "eval.every=1", "--set", "eval.limit=2",
                "--set", "train.console_every=0"])
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert "eval/smoke/saturation" in row
    assert (tmp_path / "eval" / "step-1" / "results.json").is_file()
