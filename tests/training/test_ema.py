"""EMA (ALGORITHM.md §9 item 22, pitfall P7): warm-up decay, interval gating, the reference call pattern."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rtdmd_bench.training.ema import EMA, current_decay


def _params(value: float) -> dict[str, nn.Parameter]:
    return {"w": nn.Parameter(torch.full((2,), value)), "b": nn.Parameter(torch.tensor([value, -value]))}


def _set(params, value: float) -> None:
    with torch.no_grad():
        params["w"].fill_(value)
        params["b"].copy_(torch.tensor([value, -value]))


@pytest.mark.parametrize(("n", "decay", "expected"), [
    (0, 0.9, 1 / 10), (1, 0.9, 2 / 11), (7, 0.9, 8 / 17), (70, 0.9, 71 / 80),
    (80, 0.9, 0.9), (1000, 0.9, 0.9), (0, 0.05, 0.05), (5, 0.99, 6 / 15)])
def test_current_decay_by_hand(n, decay, expected):
    assert current_decay(n, decay) == pytest.approx(expected, abs=1e-12)
    assert current_decay(n, decay, warmup=False) == decay


def test_step_is_a_no_op_off_the_interval():
    params = _params(0.0)
    ema = EMA(params, decay=0.9, update_interval=8, warmup=True)
    _set(params, 1.0)
    for n in range(7):  # (n+1) % 8 != 0
        assert ema.step(params, n) is False
    assert torch.equal(ema.shadow["w"], torch.zeros(2)) and ema.num_updates == 0
    assert ema.step(params, 7) is True  # fires with d = min(8/17, 0.9) = 8/17: θ_ema = 8/17·0 + 9/17·1
    torch.testing.assert_close(ema.shadow["w"], torch.full((2,), 9 / 17))
    torch.testing.assert_close(ema.shadow["b"], torch.tensor([9 / 17, -9 / 17]))
    assert ema.num_updates == 1
    for n in range(8, 15):
        assert ema.step(params, n) is False
    assert ema.step(params, 15) is True  # d = min(16/25, 0.9) = 0.64: 0.64·9/17 + 0.36·1
    torch.testing.assert_close(ema.shadow["w"], torch.full((2,), 0.64 * 9 / 17 + 0.36))


def test_without_warmup_uses_the_constant_decay():
    params = _params(2.0)
    ema = EMA(params, decay=0.99, update_interval=1, warmup=False)
    _set(params, 3.0)
    assert ema.step(params, 0)
    torch.testing.assert_close(ema.shadow["w"], torch.full((2,), 0.99 * 2.0 + 0.01 * 3.0))


def _reference_epoch(ema: EMA, params, e: int, sub_batches: int, new_value: float) -> int:
    """Stage-2 reference call pattern (P7, ``ema.reference_schedule``): ``step`` after every sub-batch with the
    optimizer-step counter, which becomes e+1 in the last sub-batch (its optimizer step precedes the call)."""
    fired = 0
    for i in range(sub_batches):
        last = i == sub_batches - 1
        if last:
            _set(params, new_value)  # the epoch's one optimizer step
        fired += ema.step(params, e + (1 if last else 0))
    return fired


def test_reference_schedule_fires_15_times_at_e_7_mod_8_and_once_at_e_6():
    params = _params(0.0)
    ema = EMA(params, decay=0.9, update_interval=8, warmup=True)
    counts = {e: _reference_epoch(ema, params, e, 16, float(e)) for e in range(80, 96)}
    assert {e: c for e, c in counts.items() if c} == {86: 1, 87: 15, 94: 1, 95: 15}


def test_reference_schedule_net_weight_is_decay_to_the_15():
    """At e ≡ 7 (mod 8), 15 identical updates toward the same parameters: θ_ema = 0.9¹⁵·θ_old + (1−0.9¹⁵)·θ."""
    params = _params(0.0)
    ema = EMA(params, decay=0.9, update_interval=8, warmup=True)
    with torch.no_grad():
        ema.shadow["w"].fill_(1.0)
    _set(params, 5.0)  # parameters of epoch 87's sub-batches (set by epoch 86's optimizer step)
    fired = _reference_epoch(ema, params, 87, 16, 6.0)
    assert fired == 15 and current_decay(87, 0.9) == 0.9
    w = 0.9 ** 15
    torch.testing.assert_close(ema.shadow["w"], torch.full((2,), w * 1.0 + (1 - w) * 5.0))
    assert w == pytest.approx(0.2059, abs=1e-4)


def test_intended_schedule_fires_once_per_interval():
    params = _params(0.0)
    ema = EMA(params, decay=0.9, update_interval=8, warmup=True)
    fired = [e for e in range(32) if ema.step(params, e)]
    assert fired == [7, 15, 23, 31] and ema.num_updates == 4


def test_swapped_restores_live_weights_and_state_round_trips():
    params = _params(1.0)
    ema = EMA(params, decay=0.5, update_interval=1)
    _set(params, 3.0)
    ema.step(params, 0)  # shadow = 0.5·1 + 0.5·3 = 2
    with ema.swapped(params):
        assert torch.equal(params["w"].detach(), torch.full((2,), 2.0))
    assert torch.equal(params["w"].detach(), torch.full((2,), 3.0))
    other = EMA(_params(0.0), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.shadow["b"], ema.shadow["b"]) and other.num_updates == 1
    with pytest.raises(KeyError):
        EMA({"x": nn.Parameter(torch.zeros(1))}, 0.5).load_state_dict(ema.state_dict())
