"""The application: Qt-free use cases (session), the CLI, and later the desktop window (ui)."""

from importlib import metadata

try:
    __version__ = metadata.version("open-autoglm-studio")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
