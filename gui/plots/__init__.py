"""Plots of tensors and layers (pyqtgraph): histogram, heatmap, conv filters, overview."""

from __future__ import annotations

from .panel import PlotPanel

__all__ = ["PlotPanel"]
