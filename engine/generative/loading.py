"""Load a Hugging Face causal LM from a local folder onto the CPU or a CUDA GPU.

The folder is checked first (`model_folder`), the hub is never contacted, and a
weight the checkpoint lacks is an error rather than a silently random tensor.
The dtype is refused, with the reason, where the device cannot compute in it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.device.cpu_info import cpu_info
from engine.errors import (
    CorruptModelError,
    DeviceUnavailableError,
    InputError,
    ModelLoadError,
    UnsupportedModelError,
    first_line,
)
from engine.generative.errors import DtypeUnsupportedError, IncompleteModelFolderError
from engine.generative.model_folder import ModelFolder, check_model_folder
from engine.generative.offline import import_transformers
from engine.generative.settings import DTYPES

# CPU instructions that run a dtype natively; without them torch emulates it (it works, slowly).
_NATIVE_CPU_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("avx512_fp16", "amx_fp16")}


@dataclass(frozen=True)
class CausalLM:
    """A loaded model and what a saved run needs to say about it."""

    model: Any  # a transformers PreTrainedModel in eval mode, on `device`
    folder: ModelFolder
    device: str  # "cpu" or "cuda:N"
    dtype: str
    load_ms: float
    parameter_count: int
    vocab_size: int
    max_positions: int | None
    notes: tuple[str, ...] = ()
    quantization: dict = field(default_factory=dict)  # scheme and settings, when weights were quantized

    def describe(self) -> dict:
        import torch
        import transformers

        return {
            "backend": "torch",
            "model": self.folder.to_dict(),
            "device": self.device,
            "dtype": self.dtype,
            "parameter_count": self.parameter_count,
            "vocab_size": self.vocab_size,
            "max_positions": self.max_positions,
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "quantization": dict(self.quantization),
            "notes": list(self.notes),
        }


def load_causal_lm(folder: str | Path, *, device: str = "cpu", dtype: str = "float32",
                   threads: int | None = None) -> CausalLM:
    """The model in `folder` on `device` in `dtype`; `threads` sets torch's intra-op threads (process-wide)."""
    import torch

    checked = check_model_folder(folder, compute_hash=True)
    device = resolve_device(device)
    problem = dtype_problem(device, dtype)
    if problem:
        raise DtypeUnsupportedError(f"{dtype} on {device}: {problem}")
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be 1 or more, got {threads}")
        torch.set_num_threads(threads)
    if checked.config.get("auto_map"):
        raise UnsupportedModelError(f"{checked.path}: the model needs its own Python code (auto_map in config.json), "
                                    "which the studio does not run")
    transformers = import_transformers()
    start = time.perf_counter_ns()
    model = _from_pretrained(transformers, checked, getattr(torch, dtype))
    model.to(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    load_ms = (time.perf_counter_ns() - start) / 1e6
    config = model.config.get_text_config(decoder=True)
    return CausalLM(
        model=model,
        folder=checked,
        device=device,
        dtype=dtype,
        load_ms=load_ms,
        parameter_count=sum(p.numel() for p in model.parameters()),
        vocab_size=int(config.vocab_size),
        max_positions=_max_positions(config),
        notes=tuple(note for note in [dtype_note(device, dtype)] if note),
    )


def _from_pretrained(transformers, checked: ModelFolder, torch_dtype):
    try:
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            str(checked.path), dtype=torch_dtype, local_files_only=True, trust_remote_code=False,
            output_loading_info=True,
        )
    except ValueError as error:  # transformers' word for "unknown model type" or "not a causal LM"
        raise UnsupportedModelError(f"{checked.path}: not a causal language model transformers can load "
                                    f"({first_line(error)})") from error
    except (OSError, RuntimeError) as error:  # unreadable file, out of memory, a tensor that will not convert
        raise ModelLoadError(f"{checked.path}: the weights do not load ({first_line(error)})") from error
    absent = sorted(info.get("missing_keys") or ())
    if absent:
        raise IncompleteModelFolderError(str(checked.path), [f"{len(absent)} tensors, e.g. {absent[0]}"],
                                         "the safetensors files lack weights this architecture needs")
    mismatched = sorted(info.get("mismatched_keys") or ())
    if mismatched:
        raise CorruptModelError(f"{checked.path}: {len(mismatched)} tensors have the wrong shape for config.json, "
                                f"e.g. {mismatched[0]}")
    return model.eval()


def resolve_device(device: str) -> str:
    """'cpu' or 'cuda:N', or why that device cannot be used."""
    import torch

    wanted = device.strip().lower()
    if wanted == "cpu":
        return "cpu"
    if wanted in ("cuda", "gpu"):
        wanted = "cuda:0"
    if not wanted.startswith("cuda:") or not wanted[5:].isdigit():
        raise DeviceUnavailableError(f"unknown device '{device}' for a language model; use cpu or cuda[:N]")
    if not torch.cuda.is_available():
        reason = ("this PyTorch build has no CUDA support" if torch.version.cuda is None
                  else "no CUDA GPU is visible to PyTorch")
        raise DeviceUnavailableError(f"device '{device}' is unavailable: {reason}")
    if int(wanted[5:]) >= torch.cuda.device_count():
        raise DeviceUnavailableError(f"device '{device}' is unavailable: only {torch.cuda.device_count()} CUDA GPU(s)")
    return wanted


def dtype_problem(device: str, dtype: str) -> str | None:
    """Why `device` cannot compute a language model in `dtype`, or None when it can (checked, not assumed)."""
    import torch

    if dtype not in DTYPES:
        return f"unknown dtype; choose one of {', '.join(DTYPES)}"
    if device.startswith("cuda"):
        if dtype == "bfloat16" and not torch.cuda.is_bf16_supported(including_emulation=False):
            name = torch.cuda.get_device_name(device)
            return f"{name} has no bfloat16 arithmetic (it needs compute capability 8.0, Ampere, or later)"
        return None
    if dtype == "float32":
        return None
    try:  # the operations a decoder needs; old torch builds lack half-precision CPU kernels
        x = torch.ones(2, 4, 8, dtype=getattr(torch, dtype))
        torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True)
        torch.nn.functional.linear(x, torch.ones(8, 8, dtype=x.dtype)).softmax(-1)
    except RuntimeError as error:
        return f"this PyTorch build cannot compute it on the CPU ({first_line(error)})"
    return None


def dtype_note(device: str, dtype: str) -> str | None:
    """A warning worth showing next to the figures: a dtype the CPU runs without native instructions is slow."""
    flags = _NATIVE_CPU_FLAGS.get(dtype)
    if device != "cpu" or not flags:
        return None
    if any(flag in cpu_info().isa_flags for flag in flags):
        return None
    return f"this CPU has no {' or '.join(flags).upper()}: PyTorch emulates {dtype}, usually slower than float32"


def _max_positions(config) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_fits(lm: CausalLM, total_tokens: int) -> None:
    """Refuse a run longer than the model's context before it fails deep inside attention."""
    if lm.max_positions is not None and total_tokens > lm.max_positions:
        raise InputError(f"prompt plus new tokens is {total_tokens} tokens but the model's context is "
                         f"{lm.max_positions}; shorten the prompt or ask for fewer tokens")



@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` for the block, then put back (None leaves it alone)."""
    import torch

    if threads is None:
        yield
        return
    if threads < 1:
        raise InputError(f"threads must be 1 or more, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
