"""Training recipes, installed as ``rtdmd_bench.trainers`` (this repository folder; configs in ``configs/``).

Each module exports ``RECIPE`` (``rtdmd_bench.training.recipe.Recipe``: config class, validate, build, step,
record); the registry is ``rtdmd_bench.training.registry.TRAINERS`` (torch-free, read by ``rtdmd-bench list
trainers``):

    stage1_acdmd   Stage 1 AC-DMD cold start (ALGORITHM.md §3)
    stage2_rtdmd   Stage 2 RTDMD (§4); its epoch parts live in ``stage2_parts``
    dmd            baseline: plain DMD (the stage-1 recipe with other defaults)
    grpo           baseline: pure Flow-GRPO (the stage-2 recipe with other defaults)

Shared pieces: ``common`` (backbone/reward construction, start-up validation), ``diagnostics`` (the dead-term guards).

Configs: ``configs/<stage1|stage2|dmd|grpo>/<backbone>.yaml``; ``<backbone>.yaml`` is the paper preset (the
reference's behaviour) and ``<backbone>-fixed.yaml`` the corrected variant (docs/reproduce.md).
"""
