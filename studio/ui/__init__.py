"""The desktop studio: the only code that imports PySide6 or pyqtgraph. Every use case comes from studio.usecases.benchmark."""
