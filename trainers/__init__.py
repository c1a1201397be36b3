"""Training recipes (thin: config dataclass, ``validate``, ``step``, ``main``).

    stage1_acdmd   Stage 1 AC-DMD cold start (ALGORITHM.md §3)
    stage2_rtdmd   Stage 2 RTDMD (§4)
    dmd            baseline: plain DMD
    grpo           baseline: pure Flow-GRPO

The registry is ``rtdmd_bench.training.registry.TRAINERS`` (torch-free, read by ``rtdmd-bench list trainers``).
Configs: ``trainers/configs/<stage1|stage2|dmd|grpo>/<backbone>.yaml``.
"""

from rtdmd_bench.training.registry import TRAINERS  # noqa: F401
