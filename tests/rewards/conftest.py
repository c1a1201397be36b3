"""Reward tests: one tiny-weights root per session, written by the production writer of this package."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def reward_root(tmp_path_factory):
    """Tiny random reward weights in the production layout (independent of the models' writer)."""
    from rtdmd_bench.rewards.tiny import write_tiny_rewards

    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        return write_tiny_rewards(tmp_path_factory.mktemp("reward-weights"))
    finally:
        torch.random.set_rng_state(state)


_BUILT: dict = {}


@pytest.fixture(scope="session")
def built(reward_root):
    """``built(name)`` -> the reward built once per session from the tiny root."""
    from rtdmd_bench.rewards import build

    def get(name: str):
        if name not in _BUILT:
            _BUILT[name] = build(name, weights=reward_root)
        return _BUILT[name]

    return get


def _smooth_images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(b, 3, max(2, h // 16), max(2, w // 16), generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="session")
def smooth():
    """``smooth(b, h, w, seed)`` -> natural-ish images ``[B,3,H,W]`` in [0,1] (upsampled low-frequency
    noise; resize comparisons on white noise would measure aliasing, not the preprocessing)."""
    return _smooth_images
