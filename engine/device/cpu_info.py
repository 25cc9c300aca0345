"""What CPU this is and which vector instructions it has (they decide INT8 and BF16 speed)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psutil

# ISA flags that change which kernels ONNX Runtime and PyTorch pick.
RELEVANT_ISA_FLAGS = (
    "sse4_2", "fma", "f16c", "avx", "avx2", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "sve",
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    architecture: str
    logical_cores: int
    physical_cores: int | None
    isa_flags: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "architecture": self.architecture,
            "logical_cores": self.logical_cores,
            "physical_cores": self.physical_cores,
            "isa_flags": list(self.isa_flags),
        }


@cache
def cpu_info(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    fields = _first_processor_fields(cpuinfo_path)
    model = fields.get("model name") or fields.get("Model") or platform.processor() or platform.machine()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return CpuInfo(
        model=model.strip(),
        architecture=platform.machine(),
        logical_cores=os.cpu_count() or 1,
        physical_cores=psutil.cpu_count(logical=False),
        isa_flags=tuple(flag for flag in RELEVANT_ISA_FLAGS if flag in flags),
    )


def _first_processor_fields(path: Path) -> dict[str, str]:
    """Fields of the first processor block of /proc/cpuinfo; empty where there is none (macOS, Windows)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields
