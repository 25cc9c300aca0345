"""Telemetry sources (CPU, memory, NVML GPU, RAPL, thermal, NPU, replay) and the sampler thread.

Independent of `engine` and `storage`; built in the telemetry issue.
"""
