"""Peak memory over one benchmark: process RSS and CUDA memory, with how each figure was obtained.

On Linux the kernel's RSS high-water mark (VmHWM) is reset at the start
(`/proc/self/clear_refs` ← 5), so the peak belongs to this run and not to
whatever the process did before. Elsewhere the peak is the largest RSS read
between steps (`sample`), which can miss a short spike; the figure says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
_RESET_PEAK_RSS = "5"


@dataclass(frozen=True)
class PeakMemory:
    peak_rss_bytes: int
    rss_method: str  # "kernel high-water mark" or "sampled between steps"
    cuda_peak_allocated_bytes: int | None
    cuda_peak_reserved_bytes: int | None
    cuda_unavailable_reason: str | None

    def to_dict(self) -> dict:
        return {
            "peak_rss_bytes": self.peak_rss_bytes,
            "rss_method": self.rss_method,
            "cuda_peak_allocated_bytes": self.cuda_peak_allocated_bytes,
            "cuda_peak_reserved_bytes": self.cuda_peak_reserved_bytes,
            "cuda_unavailable_reason": self.cuda_unavailable_reason,
        }


class PeakMemoryTracker:
    def __init__(self, device: str):
        self.device = device
        self._process = psutil.Process(os.getpid())
        self._sampled_peak = 0
        self._kernel_peak = False

    def start(self) -> None:
        self._kernel_peak = _reset_kernel_peak()
        self._sampled_peak = self._process.memory_info().rss
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def sample(self) -> None:
        """Call between timed steps (outside the clock) where the kernel keeps no high-water mark."""
        if not self._kernel_peak:
            self._sampled_peak = max(self._sampled_peak, self._process.memory_info().rss)

    def stop(self) -> PeakMemory:
        kernel_peak = _kernel_peak_bytes() if self._kernel_peak else None
        if kernel_peak is None:
            self.sample()
        cuda_allocated = cuda_reserved = None
        reason = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            cuda_allocated = int(torch.cuda.max_memory_allocated(self.device))
            cuda_reserved = int(torch.cuda.max_memory_reserved(self.device))
        else:
            reason = "the model runs on the CPU"
        return PeakMemory(
            peak_rss_bytes=kernel_peak if kernel_peak is not None else self._sampled_peak,
            rss_method="kernel high-water mark" if kernel_peak is not None else "sampled between steps",
            cuda_peak_allocated_bytes=cuda_allocated,
            cuda_peak_reserved_bytes=cuda_reserved,
            cuda_unavailable_reason=reason,
        )


def _reset_kernel_peak() -> bool:
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
    except OSError:  # not Linux, or a kernel/sandbox that forbids it: fall back to sampling
        return False
    return _kernel_peak_bytes() is not None


def _kernel_peak_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
