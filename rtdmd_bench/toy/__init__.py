"""Analytic 2-D benchmark of the trainers (issue 6).

Public modules: ``world`` (Gaussian-mixture data and the exact teacher velocity), ``rewards`` (bump and linear
rewards with the closed-form tilted target), ``metrics`` (MMD/energy with noise floors, mode weights, collapse,
effective β), ``nets`` (MLP velocity fields, the toy backbone, the 4-step CPS sampler), ``distill`` (stage 1:
AC-DMD / plain DMD), ``finetune`` (stage 2: RTDMD, GRPO, BP, ablations, exact-KL weights), ``bench`` (seeds,
aggregation, JSON and figure). Training composes ``rtdmd_bench.losses`` and ``rtdmd_bench.sampling``. Nothing here imports diffusers.
"""
