"""Analytic 2-D benchmark of the trainers (issue 6).

Public modules: ``world`` (Gaussian-mixture data and the exact teacher velocity), ``rewards`` (bump and linear
rewards with the closed-form tilted target), ``metrics`` (MMD/energy with noise floors, mode weights, collapse,
effective β), ``nets`` (MLP velocity fields, the toy backbone), ``methods`` (one training function per method),
``bench`` (seeds, aggregation, JSON and figure). Nothing here imports diffusers.
"""
