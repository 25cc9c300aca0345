"""The GUI's application state without Qt (napari's `components/` beside `_qt/`): pages subscribe, actions change it.

It must import with PySide6 absent: tests/studio/ui/test_state.py runs in the Qt-free test job.
"""

from studio.ui.state.app_state import AppState
from studio.ui.state.events import Event
from studio.ui.state.jobs import JobBoard, JobState, JobStatus
from studio.ui.state.model import InputChoice, OpenModel, settable_dims
from studio.ui.state.run_settings import RunSettings

__all__ = ["AppState", "Event", "InputChoice", "JobBoard", "JobState", "JobStatus", "OpenModel", "RunSettings",
           "settable_dims"]
