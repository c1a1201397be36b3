"""Per-term gradient norms and the dead-term guard (training.term_grads), by hand and on a tiny stage-2 run."""

from __future__ import annotations

import pytest
import torch
import typer
from torch import nn
from typer.testing import CliRunner

from rtdmd_bench.training.term_grads import (
    DeadTermError,
    DeadTermGuard,
    TermGradMeter,
    graph_params,
    term_norms,
)


class _Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 1, bias=False)
        self.b = nn.Linear(2, 1, bias=False)
        self.frozen = nn.Linear(2, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[1.0, 2.0]]))
            self.b.weight.copy_(torch.tensor([[3.0, -1.0]]))

    def forward(self, x):
        return self.a(x) + self.b(x) ** 2 + self.frozen(x)


def test_meter_norms_by_hand():
    net = _Two()
    x = torch.tensor([[1.0, 1.0]])
    meter = TermGradMeter(scale=2.0)
    for _ in range(2):  # two sub-batches: the vectors add, then the norm
        with graph_params(net) as params:
            out = net(x)
            t_lin, t_sq = net.a(x).sum(), (net.b(x) ** 2).sum()
            meter.add({"lin": t_lin, "sq": t_sq, "none": torch.tensor(0.0)}, params)
            out.sum().backward()  # the recipe's backward of the total still works on the retained graph
        assert set(params) == {"a.weight", "b.weight"}  # trainable params the forward used, frozen ones not
    norms = meter.norms()
    # ∇_a lin = x = (1, 1) per sub-batch; ∇_b (b·x)² = 2(b·x)x = 2·2·(1, 1) = (4, 4)
    assert float(norms["lin"]) == pytest.approx(2.0 * 2 * 2 ** 0.5)
    assert float(norms["sq"]) == pytest.approx(2.0 * 8 * 2 ** 0.5)
    assert float(norms["none"]) == 0.0  # a term without a graph is an exact zero, never an error
    assert torch.allclose(net.b.weight.grad, torch.tensor([[8.0, 8.0]]))


def test_meter_averages_vectors_over_ranks():
    net = _Two()
    meter = TermGradMeter()
    with graph_params(net) as params:
        meter.add({"lin": net.a(torch.tensor([[1.0, 0.0]])).sum()}, params)
    fake_world = [torch.tensor(0.0), None]  # the other rank's vector is its negation: the mean is 0

    def all_reduce_mean(v):
        fake_world[1] = v
        return (v + -v) / 2

    assert float(meter.norms(all_reduce_mean)["lin"]) == 0.0 and fake_world[1] is not None


def _guard(patience=2):
    return DeadTermGuard({"bp": "bp.rewards", "dm": "aux.weight: 0"},
                         lambda term, m: f"{term} measured {m.get('x')}", patience)


def test_guard_stops_a_dead_term_naming_term_quantity_and_fix():
    g = _guard()
    g.update({"grad_norm/term/bp": 0.0, "grad_norm/term/dm": 1.0, "x": 7})
    with pytest.raises(DeadTermError, match=r"bp measured 7: the 'bp' term .* first 2 measured steps\. Fix: bp\.rewards"):
        g.update({"grad_norm/term/bp": 0.0, "grad_norm/term/dm": 0.0, "x": 7})


def test_guard_ignores_terms_that_were_alive_unmeasured_or_disabled():
    g = _guard()
    for row in ({"grad_norm/term/bp": 1e-9}, {}, {"grad_norm/term/bp": 0.0}, {"grad_norm/term/bp": 0.0}):
        g.update(row)  # alive once: a hinge satisfied later is success, not a dead term
    off = _guard(patience=0)
    for _ in range(3):
        off.update({"grad_norm/term/bp": 0.0})
    assert term_norms({"grad_norm/term/bp": 0.0, "grad_norm/generator": 1.0}) == {"bp": 0.0}


def _cli(args):
    from rtdmd_bench.cli.train import train

    app = typer.Typer()
    app.command()(train)
    return CliRunner().invoke(app, args)


def test_inactive_hinge_stops_a_tiny_stage2_run(tiny_weights, tmp_path):
    # tiny R = clipscore + saturation ≈ 0.9 > margin 0.5: relu(0.5 − R) = 0 on every sample, the BP gradient is 0
    res = _cli(["--stage", "2", "--model", "tiny-sd35", "--weights", "tiny", "--steps", "3", "--out", str(tmp_path),
                "--set", "bp.margin=0.5", "--set", "sampling.grad_accum=1", "--set", "train.console_every=0",
                "--set", "diagnostics.dead_term_patience=1"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "BP hinge inactive: R = " in text and "≥ margin 0.5 on 100% of samples" in text
    assert "Fix: bp.rewards" in text and "bp.margin" in text
    assert not (tmp_path / "checkpoints").exists()  # stopped in its first step
