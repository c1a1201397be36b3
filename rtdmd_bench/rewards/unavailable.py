"""Placeholder target for known-but-unavailable scorers (``spec.available`` is False).

``rewards.build`` refuses these before importing anything; this class exists so the registry target
resolves and a direct instantiation fails with the same reason instead of an import error.
"""

from __future__ import annotations

from rtdmd_bench.rewards import RewardUnavailableError


class Unavailable:
    def __init__(self, *args, **kwargs):
        raise RewardUnavailableError("this reward is known but unavailable here; see `rtdmd-bench list rewards`")
