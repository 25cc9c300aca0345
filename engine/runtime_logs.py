"""Third-party log output (ONNX Runtime's coloured error lines, torch's logged tracebacks): shown only when the
user asks for detail (`--debug`); otherwise our one-line errors say what went wrong, and say it once.

`configure(verbose)` is called once by each entry point; ONNX Runtime's own logger is set where the runtime is
imported (`ort_severity()`), so nothing here imports a runtime.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

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


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """During a third-party call that logs its reason before it raises (torch.export.load): the lines it logs are
    kept in the yielded list instead of printed (unless verbose), so our one-line error can quote the reason."""
    lines: list[str] = []
    if _verbose:
        yield lines
        return
    handler = _ListHandler(lines)
    saved = {}
    existing = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in THIRD_PARTY_LOGGERS]
    for name in {*THIRD_PARTY_LOGGERS, *existing}:  # torch gives some of its loggers handlers of their own
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate)
        logger.handlers, logger.propagate = [handler], False
    try:
        yield lines
    finally:
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.lines.append(f"{type(error).__name__}: {error}" if error is not None else record.getMessage())
