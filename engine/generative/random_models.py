"""Random-weight causal LMs written to a folder, for tests, benchmarks and the demo.

Nothing is downloaded: the model comes from a transformers config with seeded
random weights, and the tokenizer is a byte-level BPE trained on the studio's
own sample text. Speed figures from such a model are real (the arithmetic is the
same as for trained weights of that shape); its text is gibberish.

    python -m engine.generative.random_models OUT_DIR [--preset bench] [--family llama]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.generative.offline import import_transformers
from engine.generative.prompts import SAMPLE_TEXT

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2, as Llama configs expect


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    max_positions: int


PRESETS = {
    # The test model: 2 layers, hidden 64.
    "tiny": ModelShape(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, vocab=512, max_positions=1024),
    # About 34M parameters: big enough that a CPU shows the effect of the KV cache, prefix reuse and batching.
    "bench": ModelShape(hidden=512, layers=8, heads=8, kv_heads=4, intermediate=1408, vocab=8192, max_positions=2048),
}
FAMILIES = ("llama", "gpt2")


def build_random_causal_lm(folder: str | Path, *, preset: str = "tiny", family: str = "llama", seed: int = 0,
                           initializer_range: float = 0.02, with_tokenizer: bool = True) -> Path:
    """Writes config.json, model.safetensors and (optionally) tokenizer.json into `folder`; returns the folder.

    A larger `initializer_range` gives more peaked next-token distributions, which tests use so that greedy
    decoding does not hinge on float rounding.
    """
    if preset not in PRESETS:
        raise InputError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    if family not in FAMILIES:
        raise InputError(f"unknown model family '{family}'; choose one of {', '.join(FAMILIES)}")
    import torch

    transformers = import_transformers()
    shape = PRESETS[preset]
    config = _config(transformers, family, shape, initializer_range)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random state alone
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(out)
    if with_tokenizer:
        build_tokenizer(shape.vocab).save_pretrained(out)
    return out


def _config(transformers, family: str, shape: ModelShape, initializer_range: float):
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=shape.vocab, n_embd=shape.hidden, n_layer=shape.layers, n_head=shape.heads,
            n_inner=shape.intermediate, n_positions=shape.max_positions, bos_token_id=1, eos_token_id=2,
            pad_token_id=0, initializer_range=initializer_range, architectures=["GPT2LMHeadModel"],
        )
    return transformers.LlamaConfig(
        vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads, intermediate_size=shape.intermediate,
        max_position_embeddings=shape.max_positions, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        initializer_range=initializer_range, tie_word_embeddings=False, architectures=["LlamaForCausalLM"],
    )


def build_tokenizer(vocab_size: int):
    """A byte-level BPE fitted to the sample text, so any text encodes (bytes are the fallback alphabet).

    The vocabulary is at most `vocab_size` (the text may offer fewer merges); ids stay below the model's.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    transformers = import_transformers()
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(SAMPLE_TEXT.split("\n\n"), trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=SPECIAL_TOKENS[0],
                                                bos_token=SPECIAL_TOKENS[1], eos_token=SPECIAL_TOKENS[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a random-weight causal LM (no download) to a folder.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="bench")
    parser.add_argument("--family", choices=FAMILIES, default="llama")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = build_random_causal_lm(args.folder, preset=args.preset, family=args.family, seed=args.seed)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
