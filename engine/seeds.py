"""Seeds drawn for random work that was given none, recorded so a replay is exact."""

from __future__ import annotations

import torch


def draw_seed() -> int:
    """A fresh seed for an edit or a run that was given none.

    Drawn from torch's global generator, so `torch.manual_seed` makes a session
    reproducible end to end.
    """
    return int(torch.randint(0, 2**62, ()).item())
