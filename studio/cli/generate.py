"""`generate-bench`: time to first token, time per output token and tokens/s of a local language model."""

from __future__ import annotations

import argparse
import json
import sys

from profilers.sampler import DEFAULT_HZ
from studio.cli.options import (
    cancel_on_interrupt,
    db_url,
    EXIT_USAGE,
    finite,
    print_out,
    PROG,
    progress_bar,
)
from studio.present.generation_text import generation_text
from studio.usecases.generation import BACKENDS, GenerateRequest, benchmark_generation
from studio.usecases.sweeps import parse_list


def add_generate_command(commands, common: argparse.ArgumentParser) -> None:
    generate = commands.add_parser("generate-bench", parents=[common],
                                   help="TTFT, time per token and tokens/s of a local Hugging Face causal LM folder")
    generate.add_argument("model_dir", metavar="MODEL_DIR", help="folder with config.json and safetensors weights")
    generate.add_argument("--prompt-len", type=int, default=128, metavar="P", help="prompt tokens (default 128)")
    generate.add_argument("--new-tokens", type=int, default=64, metavar="N", help="generated tokens (default 64)")
    generate.add_argument("--batch", type=int, default=1, metavar="B", help="prompts per request (default 1)")
    generate.add_argument("--requests", type=int, default=5, help="timed requests (default 5)")
    generate.add_argument("--no-cache", action="store_true", help="recompute the whole sequence at every step")
    generate.add_argument("--shared-prefix", type=int, metavar="S", help="prefix reuse: a shared system prompt of S tokens")
    generate.add_argument("--rate", type=finite, metavar="R", help="serving: Poisson arrivals per second (batched decode)")
    generate.add_argument("--duration", type=finite, metavar="S",
                          help="serving and rate sweep: seconds of arrivals in each stream")
    generate.add_argument("--rates", metavar="R1,R2,...",
                          help="arrival-rate sweep: a serving stream at each rate, then all at once; where it saturates")
    generate.add_argument("--max-batch", type=int, metavar="B",
                          help="serving and rate sweep: requests decoded together (default 8)")
    generate.add_argument("--compare-kv-cache", action="store_true",
                          help="the same requests with the KV cache and without it, side by side")
    generate.add_argument("--backend", choices=BACKENDS, default="torch",
                          help="torch, or onnxruntime-genai (plain generation; the folder is exported once and cached)")
    generate.add_argument("--device", default="cpu", help="cpu or cuda:N")
    generate.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    generate.add_argument("--threads", type=int, metavar="N", help="intra-op threads of the backend")
    generate.add_argument("--seed", type=int, default=0, help="seed of the prompts' token ids")
    generate.add_argument("--weight-quantization", choices=("int8-dynamic", "nf4"),
                          help="weight-only quantization of the Linear layers, graded by perplexity on a sample text")
    generate.add_argument("--max-perplexity-increase", type=finite, metavar="X",
                          help="refuse a quantized model whose perplexity rises by more than X (0.02 = 2%%)")
    generate.add_argument("--telemetry-hz", type=finite, default=DEFAULT_HZ, metavar="N",
                          help=f"telemetry sampling rate (default {DEFAULT_HZ:g}; 0 turns it off)")
    generate.add_argument("--no-save", action="store_true", help="do not record the run in the database")
    generate.add_argument("--tag", action="append", default=[], help="a tag for the saved run (repeatable)")
    generate.add_argument("--json", action="store_true", help="print one JSON object")
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    request = GenerateRequest(
        model_dir=args.model_dir, prompt_tokens=args.prompt_len, new_tokens=args.new_tokens, batch=args.batch,
        requests=args.requests, use_cache=not args.no_cache, shared_prefix=args.shared_prefix, rate=args.rate,
        rates=parse_list(args.rates, float, "arrival rates per second") if args.rates else (),
        duration_s=args.duration, max_batch=args.max_batch, compare_kv_cache=args.compare_kv_cache,
        backend=args.backend, device=args.device, dtype=args.dtype,
        threads=args.threads, seed=args.seed, weight_quantization=args.weight_quantization,
        max_perplexity_increase=args.max_perplexity_increase, telemetry_hz=args.telemetry_hz or None,
        save=not args.no_save,
        db_url=db_url(args), tags=tuple(args.tag),
    )
    with cancel_on_interrupt() as cancel:
        report = benchmark_generation(request, cancel=cancel, progress=None if args.json else progress_bar())
    print_out(json.dumps(report.to_dict(), indent=2, default=str) if args.json else generation_text(report))
    if report.save_error:
        sys.stderr.write(f"{PROG}: error: the run was measured but not saved: {report.save_error}\n")
        return EXIT_USAGE
    return 0
