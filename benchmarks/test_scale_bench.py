"""Post-generation steps at production sample counts: time, CPU time, peak memory and growth order.

Three synthetic GenEval-like runs (``scale_driver.py``): GenEval's 553 prompts x 4 = 2,212 samples, HPDv3's
3,200 x 4 = 12,800 and a 25k-prompt set x 4 = 100,000. Each step runs in its own process (``scale_driver.py
STEP``) so its peak RSS is its own: journal merge, aggregation with bootstrap CIs (2 rewards, 1000 resamples),
``leaderboard`` over 20 runs, ``compare`` (paired bootstrap, sign-flip and McNemar), ``check``, ``report`` (HTML,
default image limit) and the resume of a finished run (``eval`` again: plan, cached-image check by size+mtime,
aggregation), plus that resume with ``--verify-images`` (every PNG re-hashed; the synthetic PNGs are 8x8, so this
shows the per-file cost only: real 1024x1024 PNGs add ~1.7 MB of sha256 each).

Targets: every step linear or better (growth exponent between 12.8k and 100k samples at most 1.15, from CPU
seconds, which a shared machine disturbs less than wall time), and aggregation + compare of 100k samples under
30 s on 2 cores (asserted on CPU seconds: both steps run on one core, so on an idle machine CPU time is their wall
time; wall time is printed too). Run: ``pytest benchmarks/test_scale_bench.py -s`` (~5 min, ~0.5 GB of small files in tmp).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SIZES = {"geneval 553x4": 553, "hpdv3 3200x4": 3200, "25k x4": 25000}
STEPS = ("merge", "aggregate", "leaderboard", "compare", "check", "report", "resume", "resume-verify")
MAX_GROWTH = 1.15


def _driver(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, str(HERE / "scale_driver.py"), *args], env=env, capture_output=True,
                         text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for label, n_prompts in SIZES.items():
        root = tmp_path_factory.mktemp(f"scale-{n_prompts}")
        _driver("make", str(root), str(n_prompts))
        out[label] = root
    return out


def test_post_generation_steps_scale_linearly(benchmark, runs):
    table: dict[str, dict[str, dict]] = {}
    for step in STEPS:
        for label, root in runs.items():
            table.setdefault(step, {})[label] = json.loads(_driver(step, str(root)).strip().splitlines()[-1])
    labels = list(SIZES)
    n = {label: 4 * p for label, p in SIZES.items()}
    print(f"\n{'step':14s}" + "".join(f"{lb:>30s}" for lb in labels) + "   growth")
    growth = {}
    for step, row in table.items():
        mid, big = row[labels[1]], row[labels[2]]
        growth[step] = math.log(max(big["cpu_seconds"], 1e-3) / max(mid["cpu_seconds"], 1e-3)) / math.log(
            n[labels[2]] / n[labels[1]])
        cells = "".join(f"{r['seconds']:8.2f} s {r['cpu_seconds']:7.2f} cpu {r['peak_rss_mb']:6.0f} MB"
                        for r in row.values())
        print(f"{step:14s}{cells}   n^{growth[step]:.2f}")
    big = labels[2]
    agg_compare = table["aggregate"][big]["seconds"] + table["compare"][big]["seconds"]
    agg_compare_cpu = table["aggregate"][big]["cpu_seconds"] + table["compare"][big]["cpu_seconds"]
    print(f"aggregation + compare at {n[big]:,} samples: {agg_compare:.1f} s wall, {agg_compare_cpu:.1f} s CPU "
          f"(target < 30 s on 2 idle cores; both steps are single-threaded, so CPU time is their wall time on an "
          f"idle machine; load average now {os.getloadavg()[0]:.1f})")
    benchmark.extra_info.update(table=table, growth=growth, aggregation_plus_compare_100k_s=agg_compare,
                                aggregation_plus_compare_100k_cpu_s=agg_compare_cpu)
    benchmark.pedantic(lambda: _driver("resume", str(runs[labels[1]])), rounds=1, iterations=1)
    slow = {s: round(g, 2) for s, g in growth.items() if g > MAX_GROWTH}
    assert not slow, f"worse than linear between {n[labels[1]]:,} and {n[big]:,} samples: {slow}"
    assert agg_compare_cpu < 30.0
