"""Models as plain data: open a file into a ModelHandle (ONNX, TorchScript, torch.export, factories), tensors, input feeds, MACs."""
