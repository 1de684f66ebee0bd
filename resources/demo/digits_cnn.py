"""Small convolutional network for the built-in Weightsmith digits demo.

The model classifies the 8x8 handwritten digits in ``digits.npz`` (see
``digits_data.py``). It is deliberately small and uses the common layer
types (convolution, batch norm, pooling, linear, dropout) so that it makes a
compact example for inspecting and editing weights. Trained weights are in
``digits_cnn.safetensors``; ``scripts/train_demo.py`` regenerates them.

Layer names (the ``state_dict`` keys) are ``features.0`` / ``features.3``
(convolutions), ``features.1`` / ``features.4`` (batch norms) and
``classifier.1`` / ``classifier.4`` (linear layers).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DigitsCNN"]


class DigitsCNN(nn.Module):
    """Two-convolution CNN for 8x8 single-channel digit images.

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits.

    Notes
    -----
    Input is a float tensor of shape ``(N, 1, 8, 8)`` with values in
    ``[0, 1]``; output is a tensor of logits of shape ``(N, num_classes)``.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute class logits.

        Parameters
        ----------
        x : torch.Tensor
            Float images of shape ``(N, 1, 8, 8)``.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(N, num_classes)``.
        """
        return self.classifier(self.features(x))
