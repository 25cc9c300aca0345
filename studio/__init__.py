"""The application: use cases (Qt-free), their presentation, the CLI, HTML reports and the desktop window (ui)."""

from importlib import metadata

try:
    __version__ = metadata.version("open-autoglm-studio")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
