"""Generative language models: load a local Hugging Face folder, benchmark generation, serve, quantize.

Importing this package is cheap; torch and transformers load with the modules that need them:
`loading` (load_causal_lm), `benchmark` (run_generation_benchmark, compare_kv_cache), `prefix_reuse`,
`serving` (run_serving_benchmark, sweep_arrival_rates), `quantization` (quantize_with_fidelity, perplexity),
`onnx_genai` (cached_genai_export, GenAIModel, run_genai_benchmark; needs the optional onnxruntime-genai) and
`random_models`. The torch-free ones (`settings`, `results`, `model_folder`, `errors`) can be used to validate
arguments and read results.
"""
