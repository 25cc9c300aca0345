"""Telemetry for people: the live monitor's table and a timed window's summary (energy, power, throttling),
with what this machine cannot measure and why."""

from __future__ import annotations

from profilers.sampler import TelemetrySnapshot
from studio.present.numbers import reading
from studio.present.tables import table


def telemetry_summary_text(summary: dict, hz: float) -> str:
    throttle = summary["throttle"]
    checks = "; ".join(f"{device}: {', '.join(names)}" for device, names in throttle["checks"].items()) or "none possible"
    throttled = (f"YES, {throttle['count']} events, {throttle['duration_s']:.2f} s, "
                 f"{throttle['share_of_latency_samples']:.0%} of latency samples" if summary["throttled"] else "no")
    lines = [f"telemetry   {hz:g} Hz, {'live' if summary['live'] else 'REPLAYED, not live'}; "
             f"throttled: {throttled} (checked {checks})"]
    for device, figures in summary["devices"].items():
        parts = []
        if figures["energy_j"] is not None:
            parts.append(f"energy {figures['energy_j']:.3f} J ({figures['energy_method']}"
                         + (", idle subtracted" if figures["idle_subtracted"] else "") + ")")
            parts.append(f"{figures['energy_per_inference_j'] * 1e3:.3f} mJ/inference")
        if figures["average_power_w"] is not None:
            parts.append(f"power avg {figures['average_power_w']:.1f} W, peak {figures['peak_power_w']:.1f} W")
        if figures["items_per_watt"] is not None:
            parts.append(f"{figures['items_per_watt']:.2f} items/s/W")
        if figures["peak_temperature_c"] is not None:
            parts.append(f"temperature peak {figures['peak_temperature_c']:.0f} °C")
        lines.append(f"  {device:<10}{'; '.join(parts) or 'nothing measured in the timed loop'}")
    for item in summary["unavailable"]:
        what = "all metrics" if item["name"] == "*" else item["name"]
        lines.append(f"  {item['device']:<10}{what} unavailable: {item['reason']}")
    return "\n".join(lines)


def monitor_text(snapshot: TelemetrySnapshot, elapsed_s: float) -> str:
    """The latest value of every metric, then what this machine cannot measure and why."""
    rows = []
    for key, spec in sorted(snapshot.specs.items()):
        series = snapshot.series.get(key)
        latest = reading(float(series.values[-1]), spec.unit) if series is not None and len(series) else "waiting"
        rows.append((spec.device, spec.name, latest, spec.kind.value, spec.note))
    header = f"telemetry at {elapsed_s:.1f} s ({'live' if snapshot.live else 'REPLAYED, not live'})"
    text = header + "\n" + table(("device", "metric", "latest", "kind", "note"), rows)
    missing = [f"  {u.device}: {'all metrics' if u.name == '*' else u.name} unavailable: {u.reason}"
               for u in snapshot.unavailable]
    return text + ("\n" + "\n".join(missing) if missing else "")
