"""Measure what each paper-preset vs -fixed difference (docs/reproduce.md) does on the toy world and on tiny runs.

    .venv/bin/python scripts/reproduce_effects.py [--seeds 2] [--json out.json]

Toy (exact world, rtdmd_bench.toy, the recipes unchanged): the EMA call pattern (P7) in stage 1 with the paper's
fake_update_ratio 10, and in stage 2 with the paper's decay 0.9 / interval 8 (MMD of the EMA generator to p and p̃).
Tiny weights (tiny-sd35, CPU): the LoRA re-init (P8) as the size of the stage-2 weight change at the same lr, and the
EMA update counts. GenEval: the position quirk on the audit's hand cases. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import torch


def toy_ema(seeds: int) -> dict:
    """P7 on the toy: stage-1 EMA every train step (reference) vs once per generator update; stage-2 EMA after every
    sub-batch (reference) vs once per optimizer step."""
    from rtdmd_bench.toy.bench import World, quick_config
    from rtdmd_bench.toy.distill import train_stage1
    from rtdmd_bench.toy.finetune import train_stage2
    from rtdmd_bench.toy.nets import generate, pretrain

    cfg = quick_config()
    world = World(cfg)
    out: dict = {"stage1": {}, "stage2": {}}
    for seed in range(seeds):
        init = pretrain(world.data, cfg.pretrain_steps, batch=256, lr=cfg.pretrain_lr, seed=seed, hidden=cfg.hidden)
        s1_for_s2 = None
        for mode, ref in (("reference", True), ("fixed", False)):
            values = {**cfg.stage1, "dmd.fake_update_ratio": 10, "train.steps": 300, "ema.decay": 0.99,
                      "ema.reference_schedule": ref}
            s1 = train_stage1(world.exact_teacher, init, values, "stage1_acdmd", list(cfg.sigmas), cfg.eta, seed)
            s1_for_s2 = s1_for_s2 or s1
            g = torch.Generator().manual_seed(10_000 + seed)
            m = world.evaluate(generate(s1.generator, cfg.n_eval, g, list(cfg.sigmas), cfg.eta), g)
            out["stage1"].setdefault(mode, []).append({k: m[k] for k in ("mmd_teacher", "mmd_tilted")})
        for mode, ref in (("reference", True), ("fixed", False)):
            values = {**cfg.stage2, "train.steps": 40, "ema.enabled": True, "ema.decay": 0.9, "ema.update_interval": 8,
                      "ema.warmup": True, "ema.reference_schedule": ref}
            gen = train_stage2_ema(world, s1_for_s2, values, cfg, seed, train_stage2)
            g = torch.Generator().manual_seed(20_000 + seed)
            m = world.evaluate(generate(gen, cfg.n_eval, g, list(cfg.sigmas), cfg.eta), g)
            out["stage2"].setdefault(mode, []).append({k: m[k] for k in ("mmd_tilted", "mean_reward")})
    return {stage: {mode: {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} for mode, rows in d.items()}
            for stage, d in out.items()}


def train_stage2_ema(world, s1, values, cfg, seed, train_stage2):
    """Stage 2 on the toy returning the EMA generator (the toy's own helper returns the live one)."""
    from rtdmd_bench import config
    from rtdmd_bench.toy.distill import recipe_config
    from rtdmd_bench.toy.finetune import ToyRewardModule
    from rtdmd_bench.toy.nets import ToyBackbone
    from rtdmd_bench.training.ema import named_trainable
    from rtdmd_bench.training.recipe import InMemoryWorld

    sigmas = list(cfg.sigmas)
    rec, rcfg = recipe_config("stage2_rtdmd", {"policy.range_end": len(sigmas) - 3, **values}, seed)
    n_prompts = 8 * rcfg.sampling.batch_size // rcfg.sampling.k
    mem = InMemoryWorld(ToyBackbone(world.exact_teacher, s1.generator, fake_init=s1.fake, sigmas=sigmas, eta=cfg.eta),
                        prompts=[f"group{i}" for i in range(n_prompts)],
                        rewards={"r": (ToyRewardModule(world.reward), 1.0)})
    with tempfile.TemporaryDirectory(prefix="reproduce-") as out:
        sess = rec(rcfg, config.to_dict(rcfg), weights=None, out=out, device="cpu", world=mem)
    with sess.state.emas["generator"].swapped(named_trainable(sess.gen)):
        return copy.deepcopy(sess.gen).requires_grad_(False)


def tiny_lora_reinit() -> dict:
    """P8 on tiny-sd35 (rank 32): ‖ΔW‖ of the generator's LoRA delta after 2 stage-2 epochs for the reference's
    std-1 re-init at lr 3e-6, the fixed std-1/r re-init at lr 3e-6·r (the -fixed presets) and at the same lr."""
    from rtdmd_bench import config
    from rtdmd_bench.cli.train import resolve_config
    from rtdmd_bench.registry import import_target

    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="reproduce-tiny-") as tmp:
        tmp = Path(tmp)
        spec, c1, _ = resolve_config("stage1_acdmd", "tiny-sd35", None, ["lora.rank=32", "lora.alpha=64",
                                                                          "train.console_every=0"], 1)
        import_target(spec.target)(c1, config.to_dict(c1), weights="tiny", out=str(tmp / "s1"))
        for mode, ref, lr in (("reference", True, 3e-6), ("fixed", False, 9.6e-5), ("fixed_same_lr", False, 3e-6)):
            spec, c2, _ = resolve_config("stage2_rtdmd", "tiny-sd35", None, [
                "lora.rank=32", "lora.alpha=64", f"lora.reference_std_one_reinit={str(ref).lower()}",
                f"lora.generator_init_from={tmp / 's1' / 'lora' / 'generator_ema.pt'}",
                f"lora.fake_init_from={tmp / 's1' / 'lora' / 'fake_score.pt'}", f"generator_optim.lr={lr}",
                "generator_optim.eps=1e-8", "train.console_every=0", "ema.reference_schedule=" + str(ref).lower()], 2)
            sess = import_target(spec.target)(c2, config.to_dict(c2), weights="tiny", out=str(tmp / mode))
            res[mode] = {"lr": lr, "delta_w_fro": lora_delta_norm(sess.gen),
                         "ema_updates": sess.state.emas["generator"].num_updates}
    for mode in ("fixed", "fixed_same_lr"):
        res[f"reference/{mode}"] = res["reference"]["delta_w_fro"] / res[mode]["delta_w_fro"]
    return res


def lora_delta_norm(net: torch.nn.Module) -> float:
    """‖Σ_layers (α/r)·B·A‖_F: how far the stage-2 LoRA moved the merged weights (B starts at 0)."""
    from rtdmd_bench.training.lora import ADAPTER, _lora_layers

    total = 0.0
    for layer in _lora_layers(net):
        a, b = layer.lora_A[ADAPTER].weight, layer.lora_B[ADAPTER].weight
        total += float(((b.float() @ a.float()) * layer.scaling[ADAPTER]).pow(2).sum())
    return total ** 0.5


def ema_counts(epochs: int = 1000, n_sub: int = 16, interval: int = 8) -> dict:
    """EMA updates of the paper's stage-2 run: the reference's call pattern vs one per optimizer step."""
    fired, gs = 0, 0
    for _ in range(epochs):
        for b in range(n_sub):
            gs += b == n_sub - 1
            fired += (gs + 1) % interval == 0
    return {"reference": fired, "fixed": sum((e + 1) % interval == 0 for e in range(epochs))}


def geneval_quirk() -> dict:
    """Partial credit of a failed position check (dog + cat 'left of' dog, cat inside the dead zone)."""
    from rtdmd_bench.rewards.geneval_partial import partial_credit
    from rtdmd_bench.rewards.geneval_rules import Detection

    dets = {"dog": [Detection((1.5, 0, 11.5, 10), 0.9)], "cat": [Detection((0, 0, 10, 10), 0.9)]}
    meta = {"include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1, "position": ["left of", 0]}]}
    return {"reference": partial_credit(dets, meta).score, "fixed": partial_credit(dets, meta, position_quirk=False).score}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)
    doc = {"ema_counts_paper_stage2": ema_counts(), "geneval_failed_position": geneval_quirk(),
           "tiny_lora_reinit": tiny_lora_reinit(), "toy_ema": toy_ema(args.seeds)}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
