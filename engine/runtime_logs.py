"""Third-party log output (ONNX Runtime's coloured error lines, torch's logged tracebacks): shown only when the
user asks for detail (`--debug`); otherwise our one-line errors say what went wrong, and say it once.

`configure(verbose)` is called once by each entry point; ONNX Runtime's own logger is set where the runtime is
imported (`ort_severity()`), so nothing here imports a runtime.
"""

from __future__ import annotations

import logging

THIRD_PARTY_LOGGERS = ("torch", "onnxruntime", "transformers", "onnxscript", "nncf", "openvino")
ORT_VERBOSE, ORT_QUIET = 2, 4  # ONNX Runtime severities: 2 warning and up; 4 fatal only

_verbose = False


def configure(verbose: bool) -> None:
    global _verbose
    _verbose = verbose
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)


def ort_severity() -> int:
    """The log severity ONNX Runtime sessions and its default logger get."""
    return ORT_VERBOSE if _verbose else ORT_QUIET
