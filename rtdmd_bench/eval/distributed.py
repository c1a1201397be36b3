"""Evaluation sharding under ``torchrun``: rank/world from the environment, one barrier, per-rank counters.

Evaluation needs no collective but a final barrier: every rank writes its own journal and counters, rank 0
merges them. The process group itself (gloo on CPU, nccl on GPU) is owned by ``rtdmd_bench.parallel``, the
only module that touches torch.distributed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtdmd_bench.io import atomic_write_json


def rank_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` as set by torchrun; ``(0, 1)`` for a plain process."""
    from rtdmd_bench import parallel

    return parallel.rank_world()


def setup(device: str):
    """Join the torchrun process group when there is one; returns parallel's ``Dist`` (rank, world, device:
    ``cuda`` becomes ``cuda:LOCAL_RANK``)."""
    from rtdmd_bench import parallel

    return parallel.init(None if device == "auto" else device)


def barrier(dist) -> None:
    from rtdmd_bench import parallel

    parallel.barrier(dist)


def teardown(dist) -> None:
    if dist.enabled:
        from rtdmd_bench import parallel

        parallel.shutdown()


def write_rank_stats(out: Path, rank: int, stats: dict[str, Any]) -> None:
    atomic_write_json(out / "journal" / f"rank-{rank}.stats.json", stats)


def collect_rank_stats(out: Path, world: int) -> dict[str, Any]:
    """Sum the ranks' counters (and their ``profile_s`` stage times); ``max_generation_time_s`` and ``max_loop_s``
    are the slowest rank's (the throughput denominator)."""
    total: dict[str, Any] = {"profile_s": {}}
    slowest = {"generation_time_s": 0.0, "loop_s": 0.0}
    for rank in range(world):
        path = out / "journal" / f"rank-{rank}.stats.json"
        stats = json.loads(path.read_text()) if path.is_file() else {}
        for k, v in stats.items():
            if k == "profile_s":
                for stage, t in v.items():
                    total["profile_s"][stage] = round(total["profile_s"].get(stage, 0.0) + t, 4)
            elif isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
        for k in slowest:
            slowest[k] = max(slowest[k], stats.get(k, 0.0))
        path.unlink(missing_ok=True)
    total["max_generation_time_s"] = slowest["generation_time_s"]
    total["max_loop_s"] = slowest["loop_s"]
    return total
