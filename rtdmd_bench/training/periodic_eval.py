"""Periodic evaluation inside training: the harness's one ``rtdmd_bench.eval.evaluate`` path, run on the in-memory
generator with its EMA weights swapped in, so the numbers equal a later ``rtdmd-bench eval --lora`` of the export."""

from __future__ import annotations

import copy
from typing import Any

import torch

from rtdmd_bench import parallel
from rtdmd_bench.training.config import EvalSection
from rtdmd_bench.training.ema import named_trainable


def maybe_evaluate(sess: Any, cfg: EvalSection, weights: str | None) -> dict[str, float]:
    """Evaluate every ``cfg.every`` steps (collective); returns ``{"eval/<suite>/<reward>": mean}``.

    Backbones without a ``base`` adapter (the toy world) are skipped: they have their own metrics.
    """
    step = sess.state.step
    base = getattr(sess.bb, "base", None)
    if not (cfg.enabled and cfg.every and step % cfg.every == 0) or base is None:
        return {}
    from rtdmd_bench.eval import evaluate
    from rtdmd_bench.eval.config import EvalConfig

    gen = copy.copy(base)  # same encoders/VAE/schedule; the trained transformer replaces the teacher
    gen.transformer = parallel.unwrap(sess.gen)
    ecfg = EvalConfig(model=base.spec.name, suites=(cfg.suite,), rewards=tuple(cfg.rewards), limit=cfg.limit,
                      weights=weights, device=str(sess.bb.device), out=str(sess.out / "eval" / f"step-{step}"))
    ema = sess.state.emas.get("generator")
    params = named_trainable(sess.gen)
    with torch.no_grad():
        if ema is not None:
            with ema.swapped(params):
                res = evaluate(ecfg, generator=gen)
        else:
            res = evaluate(ecfg, generator=gen)
    if not res:
        return {}
    return {f"eval/{k}": v["mean"] for k, v in res.get("results", {}).items() if v.get("mean") is not None}
