"""Per-layer profiles (ONNX Runtime and PyTorch): where the time goes, where each layer ran, and two profiles compared."""
