"""Exponential moving average of the trainable parameters (ALGORITHM.md §3.1, §4.1, pitfall P7).

Intended semantics (default): the shadow holds fp32 copies of the *trainable* parameters only and is updated
once per optimizer step ``n`` (0-based) when ``(n+1) % update_interval == 0``, with decay
``min((1+n)/(10+n), decay)`` if ``warmup`` else ``decay`` (invariant 22).

The reference's call pattern (stage 1: every train step including fake-only steps; stage 2: after every
sub-batch, so 15 identical updates at epochs ≡ 7 mod 8) is reproduced by the *recipes* when their config sets
``ema.reference_schedule: true``; this class only provides ``step``. Frozen base weights are never averaged (the
reference's bf16 drift of frozen weights, P7, is not reproduced).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rtdmd_bench.models.lora import strip_prefixes


def current_decay(n: int, decay: float, warmup: bool = True) -> float:
    """``min((1+n)/(10+n), decay)`` with warm-up, else ``decay``.

    >>> current_decay(0, 0.9), current_decay(80, 0.9)
    (0.1, 0.9)
    """
    return min((1 + n) / (10 + n), decay) if warmup else decay


class EMA:
    """Shadow copy of named parameters.

    Args:
        params: name -> parameter (the trainable ones; frozen weights are not averaged).
        decay: target decay. update_interval: fire every this many steps. warmup: use the warm-up decay.
    """

    def __init__(self, params: Mapping[str, nn.Parameter], decay: float, update_interval: int = 1,
                 warmup: bool = False) -> None:
        self.decay, self.update_interval, self.warmup = decay, update_interval, warmup
        self.shadow = {k: p.detach().float().clone() for k, p in params.items()}
        self.num_updates = 0

    def step(self, params: Mapping[str, nn.Parameter], n: int) -> bool:
        """Update after optimizer step ``n`` if ``(n+1) % update_interval == 0``; returns whether it fired."""
        if (n + 1) % self.update_interval != 0:
            return False
        d = current_decay(n, self.decay, self.warmup)
        with torch.no_grad():
            for k, p in params.items():
                self.shadow[k].mul_(d).add_(p.detach().float(), alpha=1 - d)  # θ_ema ← d·θ_ema + (1−d)·θ
        self.num_updates += 1
        return True

    @contextmanager
    def swapped(self, params: Mapping[str, nn.Parameter]) -> Iterator[None]:
        """Temporarily load the shadow into ``params`` (eval, export); restores the live weights after."""
        backup = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self.shadow[k].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(backup[k])

    def state_dict(self) -> dict:
        return {"shadow": {k: v.clone() for k, v in self.shadow.items()}, "num_updates": self.num_updates}

    def load_state_dict(self, state: Mapping) -> None:
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state does not match the parameters: {sorted(missing)[:5]}")
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
        self.num_updates = int(state["num_updates"])


def named_trainable(module: nn.Module) -> dict[str, Tensor]:
    """``{name: param}`` of the parameters with ``requires_grad`` (wrapper prefixes stripped)."""
    return {strip_prefixes(n): p for n, p in module.named_parameters() if p.requires_grad}


