"""Plots in the studio's look: themed background and title, axis labels, a legend that stays readable over curves."""

from __future__ import annotations

import pyqtgraph as pg

from studio.ui.widgets.theme import plot_background, plot_foreground

LEGEND_ALPHA = 200  # of 255: curves under the legend still show through


def titled_plot(title: str, x_label: str = "", y_label: str = "") -> pg.PlotWidget:
    plot = pg.PlotWidget(background=plot_background())
    plot.setTitle(title, color=plot_foreground())
    for axis, label in (("bottom", x_label), ("left", y_label)):
        if label:  # an empty label would still take the axis' label space
            plot.setLabel(axis, label)
    return plot


def add_legend(plot: pg.PlotWidget, offset: tuple[float, float], **options) -> pg.LegendItem:
    background = plot_background()
    background.setAlpha(LEGEND_ALPHA)
    return plot.addLegend(offset=offset, brush=pg.mkBrush(background), labelTextColor=plot_foreground(), **options)
