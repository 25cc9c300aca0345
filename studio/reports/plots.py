"""Static plots for the reports and the GUI's exports: latency histogram and CDF, telemetry panels, energy bars.

Drawn with matplotlib on a `Figure` of its own (no pyplot, so no global state and no GUI backend: safe on a worker
thread beside Qt) and inlined as SVG data URIs, so a report opens anywhere with nothing beside it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np

from storage import RunData
from studio.reports.context import run_label

HISTOGRAM_BINS = 60
VIEW_PERCENTILE = 99.5  # plots stop here so one stall does not squash the distribution; the tables keep it all
MAX_PLOT_POINTS = 2000
MAX_TELEMETRY_PANELS = 12
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def latency_plots(latencies_ms: Mapping[str, np.ndarray]) -> list[dict]:
    """Overlaid latency histogram and CDF of each labelled run, as SVG data URIs with captions."""
    series = {label: np.sort(np.asarray(values, dtype=np.float64)) for label, values in latencies_ms.items()
              if np.asarray(values).size}
    if not series:
        return []
    upper = max(float(np.percentile(values, VIEW_PERCENTILE)) for values in series.values())
    lower = min(float(values[0]) for values in series.values())
    edges = np.linspace(lower, upper if upper > lower else lower + 1e-3, HISTOGRAM_BINS + 1)
    histogram, cdf = _figure(), _figure()
    hist_axes, cdf_axes = histogram.add_subplot(), cdf.add_subplot()
    for index, (label, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        hist_axes.hist(values[values <= edges[-1]], bins=edges, histtype="step", linewidth=1.6, color=colour,
                       label=label)
        picks = np.unique(np.linspace(0, values.size - 1, min(values.size, MAX_PLOT_POINTS)).astype(np.int64))
        cdf_axes.step(values[picks], (picks + 1) / values.size, where="post", color=colour, linewidth=1.6, label=label)
    hist_axes.set(xlabel="latency (ms)", ylabel="iterations", title="Latency histogram")
    cdf_axes.set(xlabel="latency (ms)", ylabel="share of iterations", title="Latency CDF", xlim=(lower, edges[-1]),
                 ylim=(0, 1.01))
    for axes in (hist_axes, cdf_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    caption = f"Up to the {VIEW_PERCENTILE:g}th percentile of the slowest run; the tables include every sample."
    return [{"title": "Latency histogram", "uri": svg_uri(histogram), "caption": caption},
            {"title": "Latency CDF", "uri": svg_uri(cdf), "caption": caption}]


def telemetry_plot(runs: Sequence[RunData]) -> str | None:
    """One panel per metric and device, each run overlaid over seconds since its first sample."""
    panels: dict[tuple[str, str], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for index, run in enumerate(runs):
        starts = [s.timestamps_ns.min() for s in run.telemetry if s.timestamps_ns.size]
        if run.latency.timestamps_ns.size:
            starts.append(run.latency.timestamps_ns.min())
        for series in run.telemetry:
            if series.values.size:
                seconds = (series.timestamps_ns - min(starts)) / 1e9
                panels.setdefault((series.device, series.metric), []).append((index, seconds, series.values))
    if not panels:
        return None
    from matplotlib.ticker import EngFormatter

    keys = sorted(panels)[:MAX_TELEMETRY_PANELS]
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    figure = _figure(3.6 * columns, 2.4 * rows)
    for position, key in enumerate(keys, start=1):
        axes = figure.add_subplot(rows, columns, position)
        for index, seconds, values in panels[key]:
            stride = max(1, values.size // MAX_PLOT_POINTS)
            axes.plot(seconds[::stride], values[::stride], color=COLOURS[index % len(COLOURS)], linewidth=1.2,
                      label=run_label(runs[index]))
        axes.yaxis.set_major_formatter(EngFormatter(sep=" "))  # 1.2 G, 2.6 k: short labels, no offset text
        low, high = (min(float(v.min()) for _, _, v in panels[key]), max(float(v.max()) for _, _, v in panels[key]))
        if high - low < 1e-6 * max(1.0, abs(high)):  # a flat line, not float noise blown up to fill the panel
            axes.set_ylim(low - max(1.0, abs(low) * 0.05), high + max(1.0, abs(high) * 0.05))
        axes.set_title(f"{key[0]} · {key[1]}", fontsize="medium")
        axes.set_xlabel("s", fontsize="small")
        axes.grid(alpha=0.3)
    if len(runs) > 1:
        figure.axes[0].legend(fontsize="x-small")
    return svg_uri(figure)


def svg_uri(figure) -> str:
    """The figure as an SVG data URI: text stays text, and the same figure always gives the same bytes."""
    import matplotlib

    stream = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "open-autoglm-studio"}):
        figure.savefig(stream, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(stream.getvalue()).decode("ascii")


def _figure(width: float = 5.6, height: float = 3.4, *, left: float = 0.75, right: float = 0.2, bottom: float = 0.55,
            top: float = 0.4, wspace: float = 0.35, hspace: float = 0.8):
    """A figure with fixed margins in inches: a layout engine would cost more than drawing the plots."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                           wspace=wspace, hspace=hspace)
    return figure


def energy_plot(runs: Sequence[RunData]) -> str | None:
    bars = [(f"#{run.record.id} {f.device}", f.joules_per_inference * 1e3, index)
            for index, run in enumerate(runs) for f in run.record.energy if f.joules_per_inference is not None]
    if not bars:
        return None
    figure = _figure(5.6, 1.3 + 0.35 * len(bars), left=1.6)
    axes = figure.add_subplot()
    axes.barh([b[0] for b in bars], [b[1] for b in bars], color=[COLOURS[b[2] % len(COLOURS)] for b in bars])
    axes.invert_yaxis()
    axes.set(xlabel="mJ per inference", title="Energy per inference")
    axes.grid(axis="x", alpha=0.3)
    return svg_uri(figure)
