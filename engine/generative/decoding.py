"""Forward passes of a causal LM, one call per timed step.

Each method runs the model once and returns the chosen next token of every row
as a Python list, which forces the device to finish (the caller reads the clock
right after, having also called `synchronize`). Greedy decoding is argmax;
sampling uses its own seeded generator, so a run's tokens do not depend on
anything else that draws random numbers in the process.

Benchmarks produce an exact number of tokens, so the end-of-sequence token is
never chosen (its logit is masked, as transformers' min_new_tokens does). The
ONNX Runtime GenAI generator does the same with min_length, which keeps the two
backends' tokens comparable one for one.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.errors import first_line
from engine.generative.errors import GenerationError
from engine.generative.loading import CausalLM

_MODEL_ERRORS = (RuntimeError, ValueError, IndexError)  # what a forward pass raises on bad shapes or memory


class Decoder:
    def __init__(self, lm: CausalLM, *, do_sample: bool = False, temperature: float = 1.0, top_k: int = 0,
                 seed: int = 0):
        self.lm = lm
        self.model = lm.model
        self.device = torch.device(lm.device)
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_k = top_k
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        self._is_cuda = self.device.type == "cuda"
        self._end_ids = end_of_sequence_ids(lm.model)

    def tensor(self, rows: Any) -> torch.Tensor:
        """Token ids (lists or numpy) as an int64 tensor on the model's device."""
        return torch.as_tensor(rows, dtype=torch.long).to(self.device)

    def synchronize(self) -> None:
        if self._is_cuda:
            torch.cuda.synchronize(self.device)

    def new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def step(self, input_ids: torch.Tensor, cache=None, *, attention_mask: torch.Tensor | None = None,
             position_ids: torch.Tensor | None = None) -> list[int]:
        """One forward pass over `input_ids` (rows × new positions) extending `cache`; the next token of each row.

        With `cache=None` the model sees only `input_ids` and keeps nothing: the no-KV-cache path, where every
        step re-reads the whole sequence.
        """
        try:
            with torch.inference_mode():
                output = self.model(input_ids=input_ids, past_key_values=cache, use_cache=cache is not None,
                                    attention_mask=attention_mask, position_ids=position_ids, logits_to_keep=1)
                chosen = self._choose(output.logits[:, -1, :])
            return chosen.tolist()
        except _MODEL_ERRORS as error:
            raise GenerationError(f"the model failed during generation: {first_line(error)}") from error

    def log_likelihoods(self, ids: torch.Tensor) -> torch.Tensor:
        """log p(token t | tokens before t) for t = 1..L-1 of each row, in float64, for perplexity."""
        try:
            with torch.inference_mode():
                logits = self.model(input_ids=ids, use_cache=False).logits[:, :-1, :].double()
                return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        except _MODEL_ERRORS as error:
            raise GenerationError(f"the model failed while scoring text: {first_line(error)}") from error

    def _choose(self, logits: torch.Tensor) -> torch.Tensor:
        if self._end_ids:
            logits = logits.index_fill(-1, torch.as_tensor(self._end_ids, device=logits.device), float("-inf"))
        if not self.do_sample:
            return logits.argmax(dim=-1)
        scaled = logits.float() / self.temperature
        if 0 < self.top_k < scaled.shape[-1]:
            kth = torch.topk(scaled, self.top_k, dim=-1).values[:, -1:]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        probabilities = torch.softmax(scaled, dim=-1)
        return torch.multinomial(probabilities, 1, generator=self._generator).squeeze(-1)


def end_of_sequence_ids(model) -> list[int]:
    """The ids that end a sequence, from the generation config or else the model config."""
    vocab = model.config.get_text_config(decoder=True).vocab_size
    for config in (getattr(model, "generation_config", None), model.config):
        value = getattr(config, "eos_token_id", None) if config is not None else None
        if value is not None:
            ids = [value] if isinstance(value, int) else list(value)
            return [int(i) for i in ids if 0 <= int(i) < vocab]
    return []
