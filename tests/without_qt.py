"""Runs pytest with PySide6, shiboken6 and pyqtgraph unimportable: proof that the Qt-free packages are Qt-free.

`make test` runs the core, engine, profilers and storage tests (and the GUI's Qt-free state) this way. A module
of theirs that imports Qt, even indirectly or lazily inside a test, fails here with ModuleNotFoundError.

    python tests/without_qt.py tests/core tests/engine ...
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "pytestqt")


class QtBlocker(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in QT_MODULES:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: this run proves the code is Qt-free)",
                                      name=fullname)
        return None


def main(arguments: list[str]) -> int:
    sys.meta_path.insert(0, QtBlocker())
    import pytest

    return pytest.main(["-p", "no:pytest-qt", *arguments])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
