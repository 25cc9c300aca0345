"""The embedded engine: models, inputs, devices, backends and the benchmark runner.

No Qt and no imports of the other studio packages. torch, onnx and onnxruntime
are imported inside the functions that need them, so importing `engine` is cheap.
"""
