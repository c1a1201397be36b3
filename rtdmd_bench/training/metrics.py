"""Run metrics: one JSON line per step in ``metrics.jsonl``, a rich console line, TensorBoard/wandb if installed,
and a per-phase wall-clock timer (rollout, reward, fake update, generator update)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class PhaseTimer:
    """Accumulates wall-clock seconds per named phase until ``pop()``."""

    def __init__(self) -> None:
        self._acc: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._acc[name] = self._acc.get(name, 0.0) + time.perf_counter() - t0

    def pop(self) -> dict[str, float]:
        """``{"time/<phase>": seconds}`` since the last pop."""
        out = {f"time/{k}": v for k, v in self._acc.items()}
        self._acc = {}
        return out


def to_float(v: Any) -> float | None:
    """Scalar tensors / numbers -> float (non-finite kept as None for JSON)."""
    try:
        f = float(v.detach().float().mean()) if hasattr(v, "detach") else float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def progress_text(row: Mapping[str, float | None]) -> str:
    """The console progress line of one step: losses, rewards, advantages, then the per-term gradient norms
    ``∇dm=… ∇bp=… ∇pg=…`` (``grad_norm/term/*``, a dead term shows as 0) and the BP hinge's active share.

    >>> progress_text({"loss_dmd": 0.5, "grad_norm/term/bp": 0.0, "grad_norm/term/dm": 2e-3, "bp/hinge_active": 1.0})
    'loss_dmd=0.5  |  ∇bp=0  ∇dm=0.002  hinge=100%'
    """
    main = [k for k in row if k.startswith(("loss", "reward/", "adv/std", "clip_frac"))][:6]
    text = "  ".join(f"{k}={row[k]:.4g}" for k in main if row[k] is not None)
    terms = [f"∇{k.rsplit('/', 1)[1]}={row[k]:.3g}" for k in row if k.startswith("grad_norm/term/") and row[k] is not None]
    if row.get("bp/hinge_active") is not None:
        terms.append(f"hinge={100 * row['bp/hinge_active']:.0f}%")
    return text + ("  |  " + "  ".join(terms) if terms else "")


class MetricsLogger:
    """Writes metrics on the main rank only.

    Args:
        out: run directory (``metrics.jsonl`` lives here). enabled: this rank logs.
        console_every: print a console line every this many steps (0 = never).
        backends: any of ``tensorboard``, ``wandb``; silently skipped when the package is missing.
    """

    def __init__(self, out: str | Path, enabled: bool = True, console_every: int = 1,
                 backends: tuple[str, ...] = ("tensorboard",), run_name: str = "") -> None:
        self.enabled, self.console_every = enabled, console_every
        self.path = Path(out) / "metrics.jsonl"
        self._tb = self._wandb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if "tensorboard" in backends:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(out) / "tb"))
            except Exception:  # tensorboard not installed: JSONL + console only
                self._tb = None
        if "wandb" in backends:
            try:
                import wandb

                self._wandb = wandb.init(project="rtdmd-bench", name=run_name or None, dir=str(out))
            except Exception:
                self._wandb = None

    def log(self, step: int, metrics: Mapping[str, Any]) -> dict[str, float | None]:
        """Append one line ``{"step": step, ...}``; returns the float view."""
        row = {k: to_float(v) for k, v in metrics.items()}
        if not self.enabled:
            return row
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **row}, allow_nan=False) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if v is not None:
                    self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if v is not None}, step=step)
        if self.console_every and step % self.console_every == 0:
            self._console(step, row)
        return row

    def _console(self, step: int, row: Mapping[str, float | None]) -> None:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold]step {step}[/bold]  {escape(progress_text(row))}")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
