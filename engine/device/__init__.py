"""Where a model can run: CPU facts, GPU and NPU discovery with the reason a device cannot be used, the environment fingerprint."""
