"""Child process for the kill -9 test: records a run, waits until the writer thread has saved it, then hangs.

Run as `python crashing_writer.py URL COUNT`; prints `saved RUN_ID` once COUNT latency samples are in the
database, then sleeps until the test kills it with SIGKILL (no finish, no close, no atexit).
"""

import sys
import time

import numpy as np

from storage import ModelInfo, RunStart, open_database

url, count = sys.argv[1], int(sys.argv[2])
database = open_database(url)
model_id = database.catalog.register_model(ModelInfo("/models/crash.onnx", "c" * 64, "onnx", 10))
writer = database.runs.start_run(RunStart(device="cpu", backend="onnxruntime", model_id=model_id),
                                 flush_interval_s=0.05)
writer.append_latency(np.arange(count, dtype=np.int64) * 1_000, np.arange(count, dtype=np.int64) + 500)
deadline = time.monotonic() + 30
while writer.saved_latency_count < count and time.monotonic() < deadline:
    time.sleep(0.01)
print(f"saved {writer.run_id}" if writer.saved_latency_count == count else "not saved", flush=True)
time.sleep(120)
