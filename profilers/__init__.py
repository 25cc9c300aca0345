"""Telemetry sources (CPU, memory, NVML GPU, RAPL, thermal, NPU, replay) and the sampler thread.

Independent of `engine` and `storage`, and free of Qt. Importing this package imports nothing heavy;
pynvml is loaded only when a GPU source is opened. The entry points, in the order a run uses them:

- `profilers.discovery.default_sources()` builds the sources for this machine;
- `profilers.sampler.TelemetrySampler(sources, hz=10)`: `prepare()` (slow: driver init), `start()`,
  `snapshot()` for the GUI timer, `subscribe(callback)` for the storage writer, `stop()`, `close()`;
- `profilers.energy.measure_idle_baseline(...)` over a quiet stretch before the timed loop (optional);
- `profilers.run_summary.summarize_snapshot(snapshot, start_ns, end_ns, inferences, ...)` for the
  energy, efficiency, temperature and throttle figures of the timed loop.

Every sysfs path is read under `AUTOGLM_SYSFS_ROOT` (default `/sys`), see `profilers.sysfs`.
"""
