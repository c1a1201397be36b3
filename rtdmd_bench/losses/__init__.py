"""Pure loss functions of the trainers (no torch.distributed, no models, no global state).

Modules:
    dmd         distribution-matching generator loss (ALGORITHM.md eq. 3.6)
    ambient     exact sub-interval renoising, the ambient fake-score target and loss, consistency (eqs. 3.1-3.4)
    policy      group-relative advantages and the clipped policy-ratio loss (eqs. 4.1-4.2)
    reward_bp   reward back-propagation through the decoder on the deterministic last step (§4.7)
"""
