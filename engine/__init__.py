"""The embedded engine, Qt-free and independent of profilers and storage.

`model/` opens files into handles and builds feeds, `device/` says where a model can run, `backends/` run it
(ONNX Runtime, PyTorch), `measure/` times it, `optimize/` makes it faster under a fidelity budget, `profiling/`
shows where its time goes layer by layer, `sweep/` measures grids of configurations, `bundle/` writes deployment
bundles and `generative/` does the same jobs for language models. torch, onnx and onnxruntime are imported inside
the functions that need them, so importing `engine` is cheap.
"""
