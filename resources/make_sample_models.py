"""Regenerate the built-in sample models deterministically from PyTorch.

    .venv/bin/python resources/make_sample_models.py [OUT_DIR]

Writes resources/models/sample_cnn.onnx and resources/models/sample_transformer.onnx
from seeded weights; running it twice gives the same bytes.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import onnx
import torch
from torch import nn

MODELS_DIR = Path(__file__).resolve().parent / "models"
SEED = 20261121


class TinyCnn(nn.Module):
    """A CIFAR-sized image classifier: 3×64×64 in, 10 class logits out."""

    def __init__(self, classes: int = 10):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 128))
        self.classifier = nn.Linear(128, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(image).mean(dim=(2, 3)))


class EncoderLayer(nn.Module):
    def __init__(self, width: int, num_heads: int, hidden: int):
        super().__init__()
        self.num_heads = num_heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, hidden)
        self.mlp_out = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        batch, sequence, width = x.shape
        head_width = width // self.num_heads
        q, k, v = self.qkv(self.attention_norm(x)).reshape(batch, sequence, 3, self.num_heads, head_width).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_width) + mask_bias
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, sequence, width)
        x = x + self.attention_out(attended)
        return x + self.mlp_out(nn.functional.gelu(self.mlp_in(self.mlp_norm(x))))


class TinyEncoder(nn.Module):
    """A BERT-shaped sequence classifier: input_ids + attention_mask in, 2 logits out."""

    def __init__(self, vocab: int = 1000, width: int = 128, num_heads: int = 4, layers: int = 2, hidden: int = 256, max_length: int = 512):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.position_embedding = nn.Embedding(max_length, width)
        self.layers = nn.ModuleList(EncoderLayer(width, num_heads, hidden) for _ in range(layers))
        self.final_norm = nn.LayerNorm(width)
        self.classifier = nn.Linear(width, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)
        mask = attention_mask.to(x.dtype)
        mask_bias = (1.0 - mask[:, None, None, :]) * -1e4
        for layer in self.layers:
            x = layer(x, mask_bias)
        x = self.final_norm(x)
        pooled = (x * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return self.classifier(pooled)


def sample_cnn() -> TinyCnn:
    """The PyTorch module behind sample_cnn.onnx, same weights: `resources/make_sample_models.py:sample_cnn`."""
    torch.manual_seed(SEED)
    return TinyCnn().eval()


def sample_transformer() -> TinyEncoder:
    """The PyTorch module behind sample_transformer.onnx, same weights."""
    torch.manual_seed(SEED)
    return TinyEncoder().eval()


def export(model: nn.Module, example: tuple, names: list[str], dynamic: dict, path: Path) -> None:
    program = torch.onnx.export(
        model.eval(), example, input_names=names, output_names=["logits"],
        dynamic_shapes=dynamic, dynamo=True, verbose=False,
    )
    proto = program.model_proto
    # The exporter's debug metadata holds source lines and stack traces: it would make the bytes
    # depend on this file's layout, and it is dead weight in a sample model.
    for message in [*proto.graph.node, *proto.graph.input, *proto.graph.output, *proto.graph.value_info,
                    *proto.graph.initializer]:
        del message.metadata_props[:]
    del proto.graph.metadata_props[:]
    onnx.save_model(proto, str(path))


def main(out_dir: Path = MODELS_DIR) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=1024)
    sequence = torch.export.Dim("sequence", min=1, max=512)

    export(sample_cnn(), (torch.randn(2, 3, 64, 64),), ["image"], {"image": {0: batch}}, out_dir / "sample_cnn.onnx")

    ids = torch.randint(0, 1000, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.int64)
    export(sample_transformer(), (ids, mask), ["input_ids", "attention_mask"],
           {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}},
           out_dir / "sample_transformer.onnx")
    for path in sorted(out_dir.glob("*.onnx")):
        print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else MODELS_DIR)
