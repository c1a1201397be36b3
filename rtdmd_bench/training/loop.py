"""The generic loop: explicit train state, optimizer steps with clipping, accumulation, checkpoint cadence.

A recipe provides ``step_fn(state) -> metrics`` (one optimizer-step-sized unit of work: a stage-1 train step or a
stage-2 epoch) and calls ``run``. Everything the trajectory depends on lives in ``TrainState`` so that
``checkpoint.save``/``resume`` round-trips it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from rtdmd_bench import parallel
from rtdmd_bench.training import checkpoint
from rtdmd_bench.training.ema import EMA
from rtdmd_bench.training.metrics import MetricsLogger


@dataclass
class TrainState:
    """Everything that must survive a resume. ``nets`` are the (possibly wrapped) trainable networks."""

    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any] = field(default_factory=dict)
    emas: dict[str, EMA] = field(default_factory=dict)
    step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self, name: str) -> list[nn.Parameter]:
        return [p for p in self.nets[name].parameters() if p.requires_grad]


def make_optimizer(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                   eps: float = 1e-8, weight_decay: float = 0.0, warmup_steps: int = 0):
    """AdamW over ``params`` and a linear-warm-up-then-constant LR schedule."""
    opt = torch.optim.AdamW(list(params), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda n: min(1.0, (n + 1) / warmup_steps) if warmup_steps else 1.0)
    return opt, sched


def backward(loss: Tensor, net: nn.Module, sync: bool) -> None:
    """``loss.backward()`` with the DDP/FSDP gradient reduction deferred unless ``sync`` (accumulation)."""
    with parallel.no_sync(net, active=not sync):
        loss.backward()


def optimizer_step(opt: torch.optim.Optimizer, sched: Any, params: list[nn.Parameter], max_norm: float) -> Tensor:
    """Clip the global grad norm, step, zero grads; returns the pre-clip norm."""
    norm = parallel.clip_grad_norm(params, max_norm)
    opt.step()
    if sched is not None:
        sched.step()
    opt.zero_grad(set_to_none=True)
    return norm


def state_dict(state: TrainState, dist: parallel.Dist, cfg_hash: str) -> dict[str, Any]:
    """Checkpoint payload (collective: every rank must call it)."""
    return {
        "config_hash": cfg_hash,
        "world": dist.world,
        "nets": {k: parallel.full_state_dict(m) for k, m in state.nets.items()},
        "optimizers": {k: parallel.optimizer_state(state.nets[k], o, dist) for k, o in state.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in state.schedulers.items()},
        "emas": {k: e.state_dict() for k, e in state.emas.items()},
        "extra": state.extra,
        "rng": parallel.all_gather_object(checkpoint.capture_rng(), dist),
    }


def load_state(state: TrainState, payload: Mapping[str, Any], dist: parallel.Dist) -> None:
    """Restore ``state`` in place from a checkpoint payload."""
    for k, m in state.nets.items():
        own = {n for n, p in m.named_parameters() if p.requires_grad}
        if own != set(payload["nets"][k]):
            raise checkpoint.CheckpointError(f"checkpoint weights of {k!r} do not match the model's trainable params")
        parallel.load_full_state_dict(m, payload["nets"][k])
    for k, o in state.optimizers.items():
        parallel.load_optimizer_state(state.nets[k], o, payload["optimizers"][k], dist)
    for k, s in state.schedulers.items():
        s.load_state_dict(payload["schedulers"][k])
    for k, e in state.emas.items():
        e.load_state_dict(payload["emas"][k])
    state.step = int(payload["step"])
    state.extra = dict(payload["extra"])
    rngs = payload["rng"]
    if len(rngs) == dist.world:
        checkpoint.restore_rng(rngs[dist.rank])


def run(state: TrainState, step_fn: Callable[[TrainState], Mapping[str, Any]], *, steps: int, out: str,
        dist: parallel.Dist, logger: MetricsLogger, cfg_hash: str, save_every: int = 0,
        on_checkpoint: Callable[[TrainState], None] | None = None,
        on_step_end: Callable[[TrainState], Mapping[str, Any] | None] | None = None) -> TrainState:
    """Run ``step_fn`` until ``state.step == steps``; checkpoint every ``save_every`` steps and at the end.

    ``on_step_end`` (e.g. periodic evaluation) may return extra metrics for the step's log line.
    """
    while state.step < steps:
        metrics = dict(step_fn(state))
        state.step += 1
        if on_step_end is not None:
            metrics.update(on_step_end(state) or {})
        logger.log(state.step, metrics)
        if (save_every and state.step % save_every == 0) or state.step == steps:
            payload = state_dict(state, dist, cfg_hash)
            if dist.is_main:
                checkpoint.save(out, state.step, payload)
            if on_checkpoint is not None:
                on_checkpoint(state)
            parallel.barrier(dist)
    return state
