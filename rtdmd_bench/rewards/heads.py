"""The regression head shared by the LAION aesthetic predictor and ImageReward."""

from __future__ import annotations

import torch
from torch import nn


class AffineMLPHead(nn.Module):
    """``Linear(d,1024) Drop(.2) Linear(1024,128) Drop(.2) Linear(128,64) Drop(.1) Linear(64,16) Linear(16,1)``.

    No activations (as published), so in eval mode the head is one affine map ``w . x + b``. Parameter names
    ``layers.{0,2,4,6,7}.{weight,bias}`` equal those of ``sac+logos+ava1-l14-linearMSE.pth`` and of the
    ``mlp.*`` part of ``ImageReward.pt``. ``[B, d] -> [B]``.
    """

    def __init__(self, in_features: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, 1024), nn.Dropout(0.2),
            nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)
