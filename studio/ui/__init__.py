"""The desktop studio, the only code that imports PySide6 or pyqtgraph (except `state/`, which is Qt-free).

`state/` holds what the application knows (open model, run settings, jobs, latest results); `pages/` render it and
`actions.py` and `workflows.py` change it; `job_runner.py` runs use cases from the `studio.usecases` facade off the
GUI thread; `main_window.py` wires them together.
"""
