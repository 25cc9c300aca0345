import threading

import numpy as np
import pytest

from engine.backends import BackendOptions, get_backend
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, InputError
from engine.measure import prepared_session as prepared_session_module
from engine.measure import runner as runner_module
from engine.measure.runner import BenchmarkSettings, run_benchmark
from engine.measure.samples import SampleBuffer
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.opening import load_model
from tests.conftest import SAMPLE_CNN

CPU_ORT = DeviceRunner("onnxruntime", "CPUExecutionProvider")


class FakeClock:
    """perf_counter_ns that advances a fixed step per reading, so loop timing is deterministic."""

    def __init__(self, step_ns: int):
        self.now = 0
        self.step_ns = step_ns

    def __call__(self) -> int:
        self.now += self.step_ns
        return self.now


class FakeSession:
    description = {"runtime": "fake"}
    run_errors = (RuntimeError,)

    def __init__(self, needs_sync=False, fail_at=None, on_call=None):
        self.calls = 0
        self.syncs = 0
        self.closed = False
        self.needs_sync = needs_sync
        self.fail_at = fail_at
        self.on_call = on_call

    def run(self, feed):
        self.calls += 1
        return {"y": np.zeros(1)}

    def bind(self, feed):
        def call():
            self.calls += 1
            if self.on_call:
                self.on_call(self.calls)
            if self.calls == self.fail_at:
                raise RuntimeError("device lost\nmore detail")

        return call

    def synchronize(self):
        self.syncs += 1

    def close(self):
        self.closed = True


class FakeBackend:
    name = "fake"

    def __init__(self, session):
        self.session = session
        self.steps = []

    def import_runtime(self):
        self.steps.append("import")

    def load(self, handle):
        self.steps.append("load")
        return object()

    def create_session(self, loaded, runner, options):
        return self.session


@pytest.fixture
def handle_and_inputs(linear_model):
    handle = load_model(linear_model)
    return handle, prepare_inputs(handle.inputs, InputRequest(batch=2))


def _run(session, handle_and_inputs, settings, **kwargs):
    handle, inputs = handle_and_inputs
    return run_benchmark(FakeBackend(session), handle, CPU_ORT, BackendOptions(), inputs, settings, **kwargs)


def test_runtime_import_is_not_counted_as_cold_start(handle_and_inputs, monkeypatch):
    # Each reading of the cold-start clock advances 1 ms; the import must happen before the first one.
    clock = FakeClock(1_000_000)
    monkeypatch.setattr(prepared_session_module, "perf_counter_ns", clock)
    handle, inputs = handle_and_inputs

    class SlowImport(FakeBackend):
        def import_runtime(self):
            super().import_runtime()
            clock.now += 5_000_000_000  # a 5 s import: none of it may show in the cold start

    backend = SlowImport(FakeSession())
    result = run_benchmark(backend, handle, CPU_ORT, BackendOptions(), inputs, BenchmarkSettings(min_duration_s=0))
    assert backend.steps == ["import", "load"]
    assert result.cold_start.load_ms == pytest.approx(1.0)


def test_iteration_floor_when_duration_is_short(handle_and_inputs, monkeypatch):
    monkeypatch.setattr(runner_module, "perf_counter_ns", FakeClock(1_000_000))
    session = FakeSession()
    result = _run(session, handle_and_inputs, BenchmarkSettings(warmup=5, min_iterations=50, min_duration_s=0.001))
    assert result.status == "completed" and result.stats.count == 50
    assert session.calls == 1 + 5 + 50  # first inference + uncounted warm-up + timed
    assert session.closed
    assert result.batch_size == 2 and result.stats.throughput_per_s > 0


def test_duration_floor_when_iterations_are_few(handle_and_inputs, monkeypatch):
    # Each iteration reads the clock twice, 1 ms apart; a 100 ms floor needs about 50 iterations.
    monkeypatch.setattr(runner_module, "perf_counter_ns", FakeClock(1_000_000))
    result = _run(FakeSession(), handle_and_inputs, BenchmarkSettings(warmup=0, min_iterations=3, min_duration_s=0.1))
    assert 45 <= result.stats.count <= 55
    assert np.all(np.diff(result.starts_ns) > 0)
    assert result.stats.min_ms == pytest.approx(1.0)


def test_cancel_takes_effect_within_one_iteration(handle_and_inputs):
    cancel = threading.Event()
    session = FakeSession(on_call=lambda calls: cancel.set() if calls == 1 + 2 + 7 else None)
    result = _run(session, handle_and_inputs, BenchmarkSettings(warmup=2, min_iterations=10_000, min_duration_s=60),
                  cancel=cancel)
    assert result.status == "cancelled" and result.stats.count == 7


def test_cancel_during_warmup_counts_nothing(handle_and_inputs):
    cancel = threading.Event()
    session = FakeSession(on_call=lambda calls: cancel.set())
    result = _run(session, handle_and_inputs, BenchmarkSettings(warmup=100, min_iterations=10), cancel=cancel)
    assert result.status == "cancelled" and result.stats.count == 0 and result.stats.mean_ms is None


def test_device_work_is_synchronized_every_iteration(handle_and_inputs):
    session = FakeSession(needs_sync=True)
    _run(session, handle_and_inputs, BenchmarkSettings(warmup=3, min_iterations=20, min_duration_s=0))
    assert session.syncs == 3 + 20


def test_runtime_failure_is_typed_and_session_closed(handle_and_inputs):
    session = FakeSession(fail_at=12)
    with pytest.raises(BackendError, match="failed during the benchmark: device lost$"):
        _run(session, handle_and_inputs, BenchmarkSettings(warmup=2, min_iterations=50, min_duration_s=0))
    assert session.closed


def test_live_buffer_and_progress(handle_and_inputs):
    buffer = SampleBuffer()
    seen = []
    result = _run(FakeSession(), handle_and_inputs, BenchmarkSettings(warmup=0, min_iterations=30, min_duration_s=0),
                  samples=buffer, progress=lambda fraction, message: seen.append((fraction, message)))
    assert len(buffer) == 30 and np.array_equal(buffer.snapshot()[1], result.latencies_ns)
    assert seen[0] == (0.0, "loading the model") and seen[-1] == (1.0, "completed")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)


@pytest.mark.parametrize("settings", [dict(warmup=-1), dict(min_iterations=0), dict(min_duration_s=-1.0),
                                      dict(min_duration_s=float("nan"))])
def test_bad_settings(settings):
    with pytest.raises(InputError):
        BenchmarkSettings(**settings)


def test_real_onnxruntime_run_on_sample_cnn():
    handle = load_model(SAMPLE_CNN)
    inputs = prepare_inputs(handle.inputs, InputRequest(batch=2))
    result = run_benchmark(get_backend("onnxruntime"), handle, CPU_ORT, BackendOptions(threads=1), inputs,
                           BenchmarkSettings(warmup=2, min_iterations=20, min_duration_s=0))
    assert result.status == "completed" and result.stats.count >= 20
    assert result.latencies_ns.dtype == np.int64 and (result.latencies_ns > 0).all()
    assert result.cold_start.session_ms > 0 and result.cold_start.first_inference_ms > 0
    assert result.session["providers"] == ["CPUExecutionProvider"] and result.session["intra_op_threads"] == 1
    assert result.environment["packages"]["onnxruntime"]
    assert result.environment["cpu"]["logical_cores"] >= 1
