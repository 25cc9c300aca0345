"""Prompts as token ids, and text for perplexity.

The benchmarks work on token ids, not text: a prompt is a seeded sequence of ids,
so its length is exact and no tokenizer is needed (many local folders have none
that loads offline). Text is only tokenized for perplexity, with the folder's
tokenizer.json when there is one, otherwise byte by byte (see `encode_text`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import InputError

# Written for the studio (no licence questions); long enough for a perplexity figure on a small model.
SAMPLE_TEXT = """\
A benchmark is a promise that two numbers were measured the same way. When a model runs faster after an \
optimization, the claim holds only if the inputs, the machine, the threads and the clock were the same for both runs.

Language models are judged by how soon the first token appears and by how steadily the rest follow. The first \
token waits for the whole prompt to be read, which is heavy arithmetic; every later token reads the weights once \
more to produce a single new word, which is mostly waiting for memory.

The key and value cache keeps what the model has already computed about earlier tokens, so each new token costs \
one step instead of a pass over the whole text. Requests that begin with the same system prompt can share that \
cache, and a server that decodes many requests together reads the weights once for all of them.

Quantization stores the weights in fewer bits. It saves memory and often time, but it changes the numbers the \
model computes, so the studio measures how much the model's predictions drift before it recommends the change. \
Perplexity on a short text is a simple way to see that drift: lower is better, and a small rise is the price paid.

Heat and power matter too. A laptop that throttles halfway through a run reports a slower model than the one it \
really has, so the studio records temperature and clock speed next to every latency it keeps."""

RESERVED_IDS = 3  # pad, bos and eos in the studio's own models; prompts never contain them


def random_prompts(count: int, length: int, vocab_size: int, seed: int, *, request: int = 0) -> np.ndarray:
    """`count` prompts of `length` token ids, drawn uniformly from the non-special ids; int64, shape (count, length).

    `request` picks an independent stream for the same seed, so request k of a run always gets the same prompts.
    """
    if vocab_size <= RESERVED_IDS:
        raise InputError(f"the model's vocabulary ({vocab_size} ids) is too small to draw prompts from")
    rng = np.random.default_rng([seed, request])
    return rng.integers(RESERVED_IDS, vocab_size, size=(count, length), dtype=np.int64)


def encode_text(text: str, folder: str | Path | None, vocab_size: int) -> tuple[np.ndarray, str]:
    """Token ids of `text` and how they were made ("tokenizer.json" or "bytes").

    Without a tokenizer each UTF-8 byte b becomes id b + 3: perplexities are then only comparable between
    variants of the same model (the original and its quantized copy), which is what fidelity needs.
    """
    tokenizer_file = Path(folder) / "tokenizer.json" if folder is not None else None
    if tokenizer_file is not None and tokenizer_file.is_file():
        from tokenizers import Tokenizer

        ids = np.asarray(Tokenizer.from_file(str(tokenizer_file)).encode(text).ids, dtype=np.int64)
        source = "tokenizer.json"
    else:
        ids = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64) + RESERVED_IDS
        source = "bytes"
    if ids.size and int(ids.max()) >= vocab_size:
        raise InputError(f"the text encodes to id {int(ids.max())} but the model has only {vocab_size} ids "
                         f"(encoded with {source}); give the model's own tokenizer.json")
    return ids, source
