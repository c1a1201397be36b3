"""Tiny generator weights for the model tests (models only: faster than the all-in ``tiny_weights`` root)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> str:
    import torch

    from rtdmd_bench.models.tiny import write_tiny_models

    root = tmp_path_factory.mktemp("tiny-models")
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    write_tiny_models(root)
    torch.random.set_rng_state(state)
    return str(root)


@pytest.fixture(scope="session")
def generators(tiny_models):
    """One loaded adapter per tiny family, shared by read-only tests."""
    from rtdmd_bench.models import build
    from rtdmd_bench.models.family import FAMILIES

    return {f.tiny.name: build(f.tiny.name, tiny_models) for f in FAMILIES.in_registration_order() if f.tiny}
