"""Per-term gradient norms of a recipe's losses w.r.t. the trained parameters, and the dead-term guard.

A recipe's objective is a weighted sum of terms (stage 2: ``pg`` policy gradient, ``kl``, ``dm`` distribution
matching, ``bp`` reward back-propagation on the generator; ``fake`` and ``consistency`` on the fake score). A term
whose gradient is exactly zero trains nothing while its config weight says it does (the shipped stage-2 configs had
``bp`` dead: the hinge ``relu(margin − R)`` with R in raw PickScore units is never active). Every step logs

    grad_norm/term/<term> = ‖Σ_{measured sub-batches b} ∇_θ L_{term,b}‖ · (n_sub / n_measured)

(the norm of the term's share of the optimizer step's gradient, before clipping, averaged over ranks like the real
gradient; ``n_measured = n_sub`` makes it exact, fewer sub-batches give an unbiased estimate of the summed vector),
and ``DeadTermGuard`` stops the run within its first steps when a configured term stays exactly zero.

Cost: one extra ``torch.autograd.grad`` per term on each measured sub-batch (a backward through the generator, and
for ``bp`` through decoder and scorers) plus one all-reduce of the per-term gradient vectors per step; with the
default ``diagnostics.term_grad_subbatches: 1`` of the paper's 16 sub-batches x 3 trained steps that is about
2 extra generator backwards per epoch (~4% of the generator update). The measurement uses ``autograd.grad``
w.r.t. the parameter tensors the forward actually used (``graph_params``: for FSDP2 the unsharded ones), so it never
touches ``.grad`` and no DDP/FSDP hook fires.

``term_norms(row)`` is the documented reader of these metrics (the toy's β-meter uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

TERMS = ("pg", "kl", "dm", "bp", "fake", "consistency")
PREFIX = "grad_norm/term/"


def metric_key(term: str) -> str:
    """``grad_norm/term/<term>``: the metrics.jsonl key of a term's gradient norm."""
    return PREFIX + term


def term_norms(row: Mapping[str, Any]) -> dict[str, float]:
    """The per-term gradient norms of one ``metrics.jsonl`` row: ``{term: ‖∇_θ L_term‖}`` (absent terms omitted).

    >>> term_norms({"step": 3, "grad_norm/term/dm": 0.5, "grad_norm/term/bp": 0.1, "loss": 1.0})
    {'dm': 0.5, 'bp': 0.1}
    """
    return {k[len(PREFIX):]: float(v) for k, v in row.items() if k.startswith(PREFIX) and v is not None}


@contextmanager
def graph_params(net: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Record, for every forward of ``net`` inside the block, the trainable parameter tensors it computes with.

    Plain and DDP modules compute with their parameters; FSDP2 swaps in unsharded copies between its pre- and
    post-forward hooks, so the tensors are read in a forward pre-hook registered after FSDP's. Yields
    ``{name: [tensor, ...]}`` (one entry per distinct tensor object), filled as forwards run.
    """
    found: dict[str, list[Tensor]] = {}
    handles = []
    owners = {name.rpartition(".")[0] for name, p in net.named_parameters() if p.requires_grad}
    for mname, module in net.named_modules():
        if mname not in owners:
            continue

        def _pre(mod, _args, mname=mname):
            for pname, p in mod.named_parameters(recurse=False):
                if p.requires_grad:
                    seen = found.setdefault(f"{mname}.{pname}", [])
                    if not any(q is p for q in seen):
                        seen.append(p)

        handles.append(module.register_forward_pre_hook(_pre))
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


class TermGradMeter:
    """Accumulates each term's gradient vector over the measured sub-batches of one optimizer step.

    Args:
        scale: multiplies the norms (``n_sub / n_measured``: the measured subset stands for the whole step).
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._sums: dict[str, dict[str, Tensor]] = {}

    def add(self, terms: Mapping[str, Tensor], params: Mapping[str, Sequence[Tensor]]) -> None:
        """``∇ term`` w.r.t. ``params`` (``graph_params``) for each term, added to that term's running vector.

        The graph is retained (the recipe's backward of the total follows). A term without a graph (a constant,
        e.g. a skipped step) contributes an exact zero.
        """
        names = list(params)
        flat = [t for n in names for t in params[n]]
        owner = [n for n in names for _ in params[n]]
        for term, value in terms.items():
            acc = self._sums.setdefault(term, {})
            if not isinstance(value, Tensor) or not value.requires_grad or not flat:
                for n in names:
                    acc.setdefault(n, torch.zeros_like(params[n][0], dtype=torch.float32))
                continue
            grads = torch.autograd.grad(value, flat, retain_graph=True, allow_unused=True)
            for n, t, g in zip(owner, flat, grads):
                g = torch.zeros_like(t, dtype=torch.float32) if g is None else g.detach().float()
                acc[n] = acc[n] + g if n in acc else g.clone()

    def norms(self, all_reduce_mean: Callable[[Tensor], Tensor] | None = None) -> dict[str, Tensor]:
        """``{term: scale·‖Σ_b ∇L_{term,b}‖}`` with the vectors averaged over ranks by ``all_reduce_mean`` first."""
        out = {}
        for term, acc in self._sums.items():
            vec = torch.cat([v.reshape(-1) for v in acc.values()]) if acc else torch.zeros(1)
            if all_reduce_mean is not None:
                vec = all_reduce_mean(vec)
            out[term] = vec.norm() * self.scale
        return out


class DeadTermError(ValueError):
    """A term with a non-zero configured weight contributed an exactly-zero gradient on every measured step."""


class DeadTermGuard:
    """Stops a run whose configured term stays dead.

    Args:
        expected: ``{term: config keys that fix it}`` for every term with a non-zero configured weight.
        diagnose: ``(term, step metrics) -> the measured quantity`` (e.g. "BP hinge inactive: R = 23.2 ≥ margin
            3.0 on 100% of samples").
        patience: measured steps a term may stay exactly zero (0 disables the guard). Only the run's first
            measurements count: a term that was alive and later vanishes (a hinge satisfied) is not an error.
    """

    def __init__(self, expected: Mapping[str, str], diagnose: Callable[[str, Mapping[str, Any]], str],
                 patience: int = 2) -> None:
        self.expected, self.diagnose, self.patience = dict(expected), diagnose, patience
        self._zero: dict[str, int] = {}
        self._alive: set[str] = set()

    def update(self, metrics: Mapping[str, Any]) -> None:
        """Check one step's ``grad_norm/term/*`` metrics; raise ``DeadTermError`` naming term, quantity and fix."""
        if self.patience <= 0:
            return
        for term, fix in self.expected.items():
            value = metrics.get(metric_key(term))
            if term in self._alive or value is None:
                continue
            if float(value) != 0.0:
                self._alive.add(term)
                continue
            self._zero[term] = self._zero.get(term, 0) + 1
            if self._zero[term] >= self.patience:
                raise DeadTermError(
                    f"{self.diagnose(term, metrics)}: the {term!r} term has a non-zero weight but its gradient "
                    f"w.r.t. the trained parameters was exactly 0 on the first {self._zero[term]} measured steps. "
                    f"Fix: {fix} (diagnostics.dead_term_patience: 0 disables this check).")
