"""The use cases the CLI and the GUI share, Qt-free, returning typed results."""
