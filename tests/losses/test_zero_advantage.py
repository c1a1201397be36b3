"""Zero-advantage filtering (§4.5): drop all-zero samples, pad back to a multiple with random dropped ones."""

from __future__ import annotations

import pytest
import torch

from rtdmd_bench.losses.policy import filter_zero_advantage


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_no_zero_keeps_everything():
    adv = torch.tensor([0.3, -0.1, 2.0, -5.0])
    assert filter_zero_advantage(adv, 2, _g()).tolist() == [0, 1, 2, 3]


def test_drops_zero_rows_when_the_count_is_already_a_multiple():
    # rows 1 and 4 sum |A| to 0; 4 nonzero rows is a multiple of 2 -> exactly the nonzero ones
    adv = torch.tensor([[0.5, 0.5], [0.0, 0.0], [-1.0, -1.0], [0.0, 1e-3], [0.0, 0.0], [2.0, 2.0]])
    assert filter_zero_advantage(adv, 2, _g()).tolist() == [0, 2, 3, 5]


def test_pads_with_the_only_dropped_sample():
    # 3 nonzero, multiple 2 -> 4 kept; only row 2 was dropped, so it must come back
    adv = torch.tensor([1.0, -1.0, 0.0, 0.5])
    assert filter_zero_advantage(adv, 2, _g()).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", range(5))
def test_pads_with_random_dropped_samples(seed):
    # nonzero {0, 5}; multiple 4 -> 2 of the dropped {1, 2, 3, 4, 6, 7} are re-admitted
    adv = torch.tensor([1.0, 0, 0, 0, 0, -2.0, 0, 0])
    keep = filter_zero_advantage(adv, 4, _g(seed)).tolist()
    assert len(keep) == 4 and keep == sorted(set(keep))
    assert {0, 5} <= set(keep) and set(keep) - {0, 5} <= {1, 2, 3, 4, 6, 7}
    assert keep == filter_zero_advantage(adv, 4, _g(seed)).tolist()  # reproducible from the generator


def test_choice_depends_on_the_generator():
    adv = torch.tensor([1.0] + [0.0] * 15)
    picks = {tuple(filter_zero_advantage(adv, 4, _g(s)).tolist()) for s in range(8)}
    assert len(picks) > 1


def test_all_zero_keeps_a_random_multiple():
    adv = torch.zeros(10, 4)
    keep = filter_zero_advantage(adv, 4, _g(3))
    assert keep.dtype == torch.int64 and len(keep) == 4 and len(set(keep.tolist())) == 4
    assert all(0 <= i < 10 for i in keep.tolist())


def test_never_more_than_n():
    assert filter_zero_advantage(torch.zeros(3), 16, _g()).tolist() == [0, 1, 2]
    assert filter_zero_advantage(torch.tensor([1.0, 0.0, 1.0]), 16, _g()).tolist() == [0, 1, 2]


def test_bad_multiple():
    with pytest.raises(ValueError, match="multiple"):
        filter_zero_advantage(torch.ones(2), 0)
