"""The studio's application state, Qt-free: what is open, how it will run, what is running, and what it found.

Pages subscribe to its events and render; actions change it. It never touches a widget, so it is tested (and
proven importable) without Qt, and the requests the use cases take are built here, from the state alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from engine.device.discovery import Device
from engine.errors import InputError
from engine.model.handle import ModelHandle
from studio import usecases
from studio.ui.state.events import Event
from studio.ui.state.jobs import JobBoard
from studio.ui.state.model import InputChoice, OpenModel
from studio.ui.state.run_settings import RunSettings

if TYPE_CHECKING:
    from engine.optimize.recipe import Recipe


class AppState:
    def __init__(self, db_url: str | None = None):
        self.db_url = db_url  # None: $AUTOGLM_STUDIO_DB or the default SQLite file
        self.model: OpenModel | None = None
        self.run_settings = RunSettings()
        self.devices: list[Device] = []
        self.selected_runs: tuple[int, ...] = ()  # in History, oldest first: the first is a comparison's baseline
        self.status = "Ready"
        self.jobs = JobBoard()
        self.model_opened = Event()  # OpenModel: a new model (its inputs at their defaults)
        self.inputs_changed = Event()  # OpenModel
        self.run_settings_changed = Event()  # RunSettings
        self.devices_changed = Event()  # list[Device]
        self.status_changed = Event()  # str: one line for the status bar

    # -- changes ---------------------------------------------------------------------------------------------
    def open(self, handle: ModelHandle) -> None:
        self.model = OpenModel(handle, InputChoice.defaults_for(handle))
        self.model_opened.emit(self.model)

    def choose_inputs(self, inputs: InputChoice) -> None:
        if self.model is not None and inputs != self.model.inputs:
            self.model = self.model.with_inputs(inputs)
            self.inputs_changed.emit(self.model)

    def update_run_settings(self, **changes) -> None:
        self._set_run_settings(replace(self.run_settings, **changes))

    def restore_run_settings(self, saved: Mapping[str, object]) -> None:
        """What an earlier session saved (`RunSettings.saved()`), as a settings file gives it back."""
        self._set_run_settings(self.run_settings.restored(saved))

    def _set_run_settings(self, settings: RunSettings) -> None:
        if settings != self.run_settings:
            self.run_settings = settings
            self.run_settings_changed.emit(settings)

    def set_devices(self, devices: list[Device]) -> None:
        self.devices = list(devices)
        self.devices_changed.emit(self.devices)

    def select_runs(self, run_ids: list[int]) -> None:
        self.selected_runs = tuple(sorted(run_ids))

    def announce(self, text: str) -> None:
        self.status = text
        self.status_changed.emit(text)

    # -- requests --------------------------------------------------------------------------------------------
    def bench_request(self) -> usecases.BenchRequest:
        """The open model under the current run settings; a malformed shape raises InputError before any run."""
        model, settings = self._open_model(), self.run_settings
        return usecases.BenchRequest(
            model=model.location, backend=settings.backend, device=settings.device,
            options=settings.backend_options(), settings=settings.benchmark_settings(),
            inputs=model.input_request(settings.batch), telemetry_hz=settings.telemetry_hz or None,
            db_url=self.db_url, scenario=settings.scenario_settings())

    def optimize_request(self, recipe: Recipe) -> usecases.OptimizeRequest:
        model, settings = self._open_model(), self.run_settings
        return usecases.OptimizeRequest(
            model=model.location, recipe=recipe, output=str(usecases.default_optimized_path(model.handle, recipe)),
            inputs=model.input_request(settings.batch), threads=settings.threads or 1, db_url=self.db_url,
            compare_seconds=settings.compare_seconds)

    def _open_model(self) -> OpenModel:
        if self.model is None:
            raise InputError("open a model first (File ▸ Open model…)")
        return self.model
