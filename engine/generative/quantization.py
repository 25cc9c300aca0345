"""Weight-only quantization of a causal LM, gated on perplexity.

Schemes:
- "int8-dynamic": every `nn.Linear` gets int8 weights and int8 activations
  quantized per call (torch.ao dynamic quantization, CPU, float32 models). Its
  API is deprecated upstream in favour of torchao, but torchao 0.18's int8
  weight-only kernel measured 2× slower than float32 on this project's CPU,
  while this one measured 1.9× faster; the deprecation warning is silenced here.
- "nf4": 4-bit NormalFloat weights in blocks (bitsandbytes `Linear4bit`), which
  computes in the model's dtype. It saves ~7/8 of the Linear weights' memory; on
  CPUs it is usually slower than float32. The output head stays unquantized, as
  is customary, because it dominates perplexity.

Fidelity is perplexity on a short text (`prompts.SAMPLE_TEXT` by default) with
the same token ids for the original and the quantized model, so the comparison
holds even for a model without a tokenizer. The original model is never changed.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from dataclasses import dataclass, replace
from time import perf_counter_ns

import numpy as np
import torch

from engine.errors import first_line
from engine.generative.decoding import Decoder
from engine.generative.errors import QuantizationUnavailableError
from engine.generative.loading import CausalLM
from engine.generative.prompts import SAMPLE_TEXT, encode_text

SCHEMES = ("int8-dynamic", "nf4")
KEEP_UNQUANTIZED = ("lm_head",)


@dataclass(frozen=True)
class Perplexity:
    value: float
    tokens_scored: int
    tokenization: str  # "tokenizer.json" or "bytes"

    def to_dict(self) -> dict:
        return {"perplexity": self.value, "tokens_scored": self.tokens_scored, "tokenization": self.tokenization}


@dataclass(frozen=True)
class QuantizationReport:
    scheme: str
    quantize_ms: float
    linear_layers_quantized: int
    weight_bytes_before: int
    weight_bytes_after: int
    perplexity_before: Perplexity
    perplexity_after: Perplexity

    @property
    def perplexity_increase(self) -> float:
        """Relative increase: 0.01 means 1 % worse."""
        return self.perplexity_after.value / self.perplexity_before.value - 1.0

    def to_dict(self) -> dict:
        return {
            "scheme": self.scheme,
            "quantize_ms": self.quantize_ms,
            "linear_layers_quantized": self.linear_layers_quantized,
            "weight_bytes_before": self.weight_bytes_before,
            "weight_bytes_after": self.weight_bytes_after,
            "perplexity_before": self.perplexity_before.to_dict(),
            "perplexity_after": self.perplexity_after.to_dict(),
            "perplexity_increase": self.perplexity_increase,
        }


def scheme_problem(lm: CausalLM, scheme: str) -> str | None:
    """Why `scheme` cannot quantize this model here, or None."""
    if scheme not in SCHEMES:
        return f"unknown scheme '{scheme}'; choose one of {', '.join(SCHEMES)}"
    if scheme == "int8-dynamic":
        if lm.device != "cpu":
            return "PyTorch dynamic INT8 runs on the CPU only; load the model with device cpu"
        if lm.dtype != "float32":
            return f"PyTorch dynamic INT8 needs a float32 model, this one is {lm.dtype}"
        if set(torch.backends.quantized.supported_engines) <= {"none"}:
            return "this PyTorch build has no quantized CPU engine (fbgemm, x86 or qnnpack)"
        return None
    try:
        _import_bitsandbytes()
    except ImportError as error:
        return f"4-bit needs bitsandbytes ({first_line(error)}); pip install bitsandbytes"
    return None


def quantize_weights(lm: CausalLM, scheme: str) -> tuple[CausalLM, int]:
    """A quantized copy of the model and how many Linear layers were quantized; `lm` stays as it was."""
    problem = scheme_problem(lm, scheme)
    if problem:
        raise QuantizationUnavailableError(f"{scheme}: {problem}")
    model = copy.deepcopy(lm.model)
    if scheme == "int8-dynamic":
        count = _quantize_int8_dynamic(model)
    else:
        count = _quantize_nf4(model, lm.dtype, lm.device)
    if count == 0:
        raise QuantizationUnavailableError(f"{scheme}: the model has no nn.Linear layers to quantize")
    quantized = replace(lm, model=model.eval(), quantization={"scheme": scheme, "linear_layers": count,
                                                              "kept_unquantized": list(KEEP_UNQUANTIZED)})
    return quantized, count


def _linear_layers(model) -> list[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    found = []
    for parent_name, parent in model.named_modules():
        for name, child in parent.named_children():
            full = f"{parent_name}.{name}" if parent_name else name
            if isinstance(child, torch.nn.Linear) and not any(full.endswith(k) for k in KEEP_UNQUANTIZED):
                found.append((parent, name, child))
    return found


def _quantize_int8_dynamic(model) -> int:
    names = {f"{parent_name}.{name}" if parent_name else name
             for parent_name, parent in model.named_modules() for name, child in parent.named_children()
             if any(child is linear for _, _, linear in _linear_layers(model))}
    with warnings.catch_warnings():  # deprecated upstream; kept because it is the fast CPU path (module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)
    return len(names)


def _quantize_nf4(model, dtype: str, device: str) -> int:
    bnb = _import_bitsandbytes()
    layers = _linear_layers(model)
    for parent, name, linear in layers:
        four_bit = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=linear.bias is not None,
                                     compute_dtype=getattr(torch, dtype), quant_type="nf4", device="meta")
        four_bit.weight = bnb.nn.Params4bit(linear.weight.data.to("cpu", torch.float32).contiguous(),
                                            requires_grad=False, quant_type="nf4")
        if linear.bias is not None:
            four_bit.bias = torch.nn.Parameter(linear.bias.data.clone(), requires_grad=False)
        setattr(parent, name, four_bit.to(device))  # moving the Params4bit is what quantizes it
    return len(layers)


def _import_bitsandbytes():
    # On import, bitsandbytes suggests fetching a CPU kernel from the hub, which the studio never does.
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # its import trips torch.jit's own deprecation warning
            warnings.simplefilter("ignore", DeprecationWarning)
            import bitsandbytes
    finally:
        logger.setLevel(level)
    return bitsandbytes


def weight_bytes(model) -> int:
    """Bytes held by parameters and buffers (quantized layers keep their packed weights in either)."""
    total = sum(t.numel() * t.element_size() for t in model.parameters())
    total += sum(t.numel() * t.element_size() for t in model.buffers())
    dynamic_linear = torch.ao.nn.quantized.dynamic.Linear
    for module in model.modules():  # torch.ao's dynamic Linear keeps weight and bias in a packed object
        if isinstance(module, dynamic_linear):
            weight, bias = module.weight(), module.bias()
            total += weight.numel() * weight.element_size()
            total += bias.numel() * bias.element_size() if bias is not None else 0
    return total


def perplexity(lm: CausalLM, *, text: str = SAMPLE_TEXT, token_ids: np.ndarray | None = None,
               window: int = 256) -> Perplexity:
    """exp(mean negative log-likelihood) over the text, in consecutive windows of at most `window` tokens."""
    if token_ids is None:
        token_ids, source = encode_text(text, lm.folder.path, lm.vocab_size)
    else:
        source = "given token ids"
    window = min(window, lm.max_positions or window)
    decoder = Decoder(lm)
    total, count = 0.0, 0
    for begin in range(0, max(int(token_ids.size) - 1, 0), window):
        chunk = token_ids[begin:begin + window + 1]
        if chunk.size < 2:
            break
        log_likelihoods = decoder.log_likelihoods(decoder.tensor(chunk[None, :]))
        total -= float(log_likelihoods.sum())
        count += int(log_likelihoods.numel())
    if count == 0:
        raise QuantizationUnavailableError("the perplexity text is shorter than two tokens")
    return Perplexity(math.exp(total / count), count, source)


def quantize_with_fidelity(lm: CausalLM, scheme: str, *,
                           text: str = SAMPLE_TEXT) -> tuple[CausalLM, QuantizationReport]:
    """Quantize and measure perplexity before and after on the same tokens; the recipe decides on the report."""
    token_ids, source = encode_text(text, lm.folder.path, lm.vocab_size)
    before = replace(perplexity(lm, token_ids=token_ids), tokenization=source)
    start = perf_counter_ns()
    quantized, count = quantize_weights(lm, scheme)
    quantize_ms = (perf_counter_ns() - start) / 1e6
    after = replace(perplexity(quantized, token_ids=token_ids), tokenization=source)
    report = QuantizationReport(scheme, quantize_ms, count, weight_bytes(lm.model), weight_bytes(quantized.model),
                                before, after)
    return quantized, report
