"""Decoding NVML clock event ("throttle") reason bitmasks into names a user recognises.

The bits are those of `nvmlClocksEventReason*` in nvml.h (called `nvmlClocksThrottleReason*`
before driver 535). Kept here as plain constants so decoding works in replays and tests on
machines without the NVIDIA driver.
"""

from __future__ import annotations

CLOCK_EVENT_REASON_BITS: dict[int, str] = {
    0x1: "GpuIdle",
    0x2: "AppClocks",
    0x4: "SwPowerCap",
    0x8: "HwSlowdown",
    0x10: "SyncBoost",
    0x20: "SwThermal",
    0x40: "HwThermal",
    0x80: "HwPowerBrake",
    0x100: "DisplayClock",
    0x200: "BoardLimit",
    0x400: "Reliability",
}

# Reasons that mean the GPU runs slower than it could because of heat or a power cap. GpuIdle,
# AppClocks, SyncBoost and DisplayClock are deliberate clock choices, not throttling.
THROTTLE_REASON_NAMES: frozenset[str] = frozenset({"SwPowerCap", "HwSlowdown", "SwThermal", "HwThermal",
                                                   "HwPowerBrake"})
THROTTLE_REASON_MASK: int = sum(bit for bit, name in CLOCK_EVENT_REASON_BITS.items() if name in THROTTLE_REASON_NAMES)


def decode_clock_event_reasons(mask: int) -> list[str]:
    """Names of the set bits, lowest first; bits nvml.h does not define come out as hex, never dropped."""
    mask = int(mask)
    if mask < 0:
        raise ValueError(f"clock event reason mask must be non-negative, got {mask}")
    names = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            names.append(CLOCK_EVENT_REASON_BITS.get(bit, f"0x{bit:x}"))
        bit <<= 1
    return names


def throttle_reasons(mask: int) -> list[str]:
    """The decoded reasons that count as throttling (thermal or power cap)."""
    return [name for name in decode_clock_event_reasons(mask) if name in THROTTLE_REASON_NAMES]
