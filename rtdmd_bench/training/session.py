"""Run setup shared by every recipe: process grid, networks (+LoRA, wrapping), optimizers, EMA, state, resume,
metrics, prompt data and the final LoRA export. Recipes call ``start`` and then only write their step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rtdmd_bench import parallel
from rtdmd_bench.training import checkpoint, lora
from rtdmd_bench.training.backbone import Backbone, SampleRNG
from rtdmd_bench.training.config import EMASection, LoraSection, OptimSection, RunSection
from rtdmd_bench.training.ema import EMA, named_trainable
from rtdmd_bench.training.loop import TrainState, make_optimizer
from rtdmd_bench.training.metrics import MetricsLogger, PhaseTimer


@dataclass
class Session:
    """Everything a recipe step needs. ``gen``/``fake`` are the (wrapped) trainable nets, ``teacher`` is frozen."""

    bb: Backbone
    dist: parallel.Dist
    teacher: nn.Module
    gen: nn.Module
    fake: nn.Module | None
    state: TrainState
    rng: SampleRNG
    out: Path
    logger: MetricsLogger
    cfg_hash: str
    prompts: list[str]
    metadata: list[dict[str, Any]]
    timer: PhaseTimer = field(default_factory=PhaseTimer)
    lora_targets: list[str] = field(default_factory=list)
    prompt_source: str | None = None  # data.prompts (suite or file); None for in-memory prompts


def run_prompts(data: Any, override: Any = None) -> tuple[list[str], list[dict[str, Any]]]:
    """A recipe's prompts and per-prompt metadata: ``override`` (an in-memory list, empty metadata) or
    ``data.prompts`` (a suite name or a prompt file, ``suites.load_prompt_source``) limited to ``data.limit``."""
    if override is not None:
        return list(override), [{} for _ in override]
    from rtdmd_bench.suites import load_prompt_source

    records = load_prompt_source(data.prompts, data.limit)
    return [r.prompt for r in records], [dict(r.metadata) for r in records]


PROMPT_HASHES = "training_prompts.txt"  # beside training.json: one suites.prompt_hash per line, sorted


def prompts_record(sess: Session, data: Any) -> dict[str, Any]:
    """The ``prompts`` entry of ``training.json``: what the run trained on and whether test prompts were allowed.

    ``{"source", "suite", "split", "sha256", "n_prompts", "allow_test_prompts", "hashes_file"}``; ``hashes_file``
    names the file ``export`` writes beside training.json (the prompt hashes an evaluation compares its suites
    with). A run on in-memory prompts (``InMemoryWorld``, the toy) has ``source: "in-memory"``.
    """
    from rtdmd_bench.suites import prompt_source_info

    info = {"source": "in-memory", "suite": None, "split": None, "sha256": None}
    if sess.prompt_source is not None:
        info = prompt_source_info(sess.prompt_source)
    return {**info, "n_prompts": len(sess.prompts), "allow_test_prompts": bool(data.allow_test_prompts),
            "hashes_file": PROMPT_HASHES}


def _prepare(net: nn.Module, bb: Backbone, cfg: LoraSection, init_from: str | None, seed: int) -> list[str]:
    """Inject LoRA (or unfreeze everything when LoRA is off / the backbone has no targets)."""
    if not cfg.enabled or bb.lora_targets is None:
        net.requires_grad_(True)
        return []
    targets = list(bb.lora_targets)
    lora.inject_lora(net, targets, cfg.rank, cfg.alpha, seed=seed)
    if init_from:  # §4.1: load the previous stage's LoRA, merge it, restart an identity adapter
        lora.load_lora(net, torch.load(init_from, map_location="cpu", weights_only=True))
        lora.merge_and_reinit(net, reference_std_one=cfg.reference_std_one_reinit, seed=seed + 1)
    return targets


def start(*, bb: Backbone, cfg_dict: Mapping[str, Any], run: RunSection, lora_cfg: LoraSection,
          gen_optim: OptimSection, fake_optim: OptimSection | None, ema_cfg: EMASection, out: str | Path,
          prompts: Sequence[str], metadata: Sequence[dict[str, Any]], resume: bool = False,
          dist: parallel.Dist | None = None, rng_block: int = 0, prompt_source: str | None = None) -> Session:
    """Build networks, optimizers, EMA and state; resume from ``out`` when asked; write the resolved config.

    ``bb`` is any ``Backbone`` object (image adapters or an in-memory world such as the toy's); ``rng_block`` is
    the ``SampleRNG`` layout (0: one generator per sample; B: one per block of B global samples, see there).
    """
    dist = dist or parallel.init(str(bb.device))
    out = Path(out)
    nets = bb.networks()
    nets.teacher.requires_grad_(False)
    targets = _prepare(nets.generator, bb, lora_cfg, lora_cfg.generator_init_from, run.seed)
    if fake_optim is not None:
        _prepare(nets.fake, bb, lora_cfg, lora_cfg.fake_init_from, run.seed + 7)
    gen = parallel.wrap(nets.generator, dist, run.parallel)
    fake = parallel.wrap(nets.fake, dist, run.parallel) if fake_optim is not None else None
    trainable = {"generator": gen} | ({"fake": fake} if fake is not None else {})
    optimizers, schedulers = {}, {}
    for name, net, oc in (("generator", gen, gen_optim), ("fake", fake, fake_optim)):
        if net is None:
            continue
        optimizers[name], schedulers[name] = make_optimizer(
            [p for p in net.parameters() if p.requires_grad], oc.lr, oc.betas, oc.eps, oc.weight_decay, oc.warmup_steps)
    emas = {}
    if ema_cfg.enabled:
        emas["generator"] = EMA(named_trainable(gen), ema_cfg.decay, ema_cfg.update_interval, ema_cfg.warmup)
    state = TrainState(nets=trainable, optimizers=optimizers, schedulers=schedulers, emas=emas)
    cfg_hash = checkpoint.config_hash(dict(cfg_dict))
    if resume:
        found = checkpoint.latest(out)
        if found is None:
            raise checkpoint.CheckpointError(f"--resume: no checkpoint under {out / 'checkpoints'}")
        from rtdmd_bench.training.loop import load_state

        load_state(state, checkpoint.load(found, expected_hash=cfg_hash), dist)
    if dist.is_main:
        from rtdmd_bench.io import atomic_write_json

        atomic_write_json(out / "config.json", {"config_hash": cfg_hash, "world": dist.world, "config": cfg_dict})
    logger = MetricsLogger(out, enabled=dist.is_main, console_every=run.console_every, backends=run.log_backends)
    return Session(bb=bb, dist=dist, teacher=nets.teacher, gen=gen, fake=fake, state=state, rng=SampleRNG(run.seed, rng_block),
                   out=out, logger=logger, cfg_hash=cfg_hash, prompts=list(prompts), metadata=list(metadata),
                   lora_targets=targets, prompt_source=prompt_source)


def export(sess: Session, lora_cfg: LoraSection, training: dict | None = None) -> dict[str, str]:
    """Write the generator LoRA (live and EMA) and the fake-score LoRA to ``out/lora/`` (collective call).

    ``out/lora/generator_ema.pt`` is what ``rtdmd-bench eval --model NAME --lora FILE`` loads; ``training``
    (``lora.training_record``) is written beside the generator files as ``training.json``, so an evaluation of
    the LoRA records which rewards it was trained on (compare's reward-hacking check); with a ``prompts`` entry
    (``prompts_record``) the training prompts' hashes go to its ``hashes_file`` (the contamination flag).
    """
    if not sess.lora_targets:
        return {}
    files: dict[str, str] = {}
    gen_state = parallel.full_state_dict(sess.gen)
    ema = sess.state.emas.get("generator")
    ema_state = None
    if ema is not None:
        with ema.swapped(named_trainable(sess.gen)):
            ema_state = parallel.full_state_dict(sess.gen)
    fake_state = parallel.full_state_dict(sess.fake) if sess.fake is not None else None
    if sess.dist.is_main:
        d = sess.out / "lora"
        for name, st in (("generator", gen_state), ("generator_ema", ema_state), ("fake_score", fake_state)):
            if st is not None:
                files[name] = str(lora.export_lora(d / f"{name}.pt", st, lora_cfg.rank, lora_cfg.alpha,
                                                   sess.lora_targets,
                                                   training=training if name.startswith("generator") else None))
        hashes = ((training or {}).get("prompts") or {}).get("hashes_file")
        if hashes:
            from rtdmd_bench.io import atomic_write_bytes
            from rtdmd_bench.suites import prompt_hash

            lines = sorted({prompt_hash(p) for p in sess.prompts})
            atomic_write_bytes(d / hashes, ("\n".join(lines) + "\n").encode())
            files["prompt_hashes"] = str(d / hashes)
    parallel.barrier(sess.dist)
    return files
