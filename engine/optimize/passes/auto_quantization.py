"""Auto quantization: measure, don't assume, which INT8 variant is fastest within the accuracy budget.

For each family (dynamic and static QDQ, per-tensor and per-channel) it
quantizes everything, ranks nodes by sensitivity, and keeps the most sensitive
ones in FP32 (`nodes_to_exclude`) one at a time until the budget holds. The
surviving candidates and the FP32 model are then timed side by side on the
chosen device, and the fastest that meets the budget wins, FP32 included: on a
conv network where dynamic INT8 is slower, it is never picked, because it loses
the race rather than because a rule says so.

Candidates are judged on the user's held-out samples when calibration data was
given (ModelInputs.fidelity_feeds), on seeded synthetic inputs otherwise. The
FP32 contender is the file this pass was given, untouched (the clean-up the
quantizers need is done on copies), and when it wins the output is that file,
byte for byte.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.errors import OptimizationError
from engine.model.opening import load_model
from engine.optimize.fidelity import ModelRunner, check_budget
from engine.optimize.output_metrics import compare_outputs
from engine.optimize.params import choice, from_device, from_recipe, integer, number
from engine.optimize.passes import onnx_tools
from engine.optimize.passes.base import (
    QUANTIZATION,
    ModelTraits,
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    Stage,
)
from engine.optimize.passes.latency import measure_side_by_side
from engine.optimize.passes.model_inputs import FeedSpecs
from engine.optimize.passes.prepare_onnx import PrepareOnnxConfig, PrepareOnnxPass
from engine.optimize.passes.quantization import (
    CalibratedInt8Config,
    DynamicInt8Config,
    StaticInt8Config,
    int8_expectations,
    pre_process,
    quantize_dynamic_model,
    quantize_static_model,
    quantizer_log_notes,
)
from engine.optimize.passes.sensitivity import (
    EXCLUDE_ONE_LIMIT,
    excludable_nodes,
    exclude_one,
    qdq_sqnr_ranking,
    weight_sqnr_ranking,
)
from engine.optimize.settings import AccuracyBudget

FAMILIES = (("dynamic", False), ("dynamic", True), ("static", False), ("static", True))
FP32 = "fp32"


@dataclass(frozen=True)
class AutoQuantizationConfig(CalibratedInt8Config):
    """nodes_to_exclude are kept in FP32 in every candidate; the search adds the most sensitive others."""

    auto_seconds_per_candidate: float = number(2.0, 0.0, 600.0, "seconds each surviving candidate is timed",
                                               low_open=True)
    auto_max_fp32_nodes: int = integer(16, 0, 100_000, "the most nodes auto keeps in FP32 per candidate")
    auto_sensitivity: str = choice("auto", ("auto", "exclude_one", "sqnr"), "how nodes are ranked for FP32 fallback: "
                                   "exclude_one measures each, sqnr estimates; auto picks by model size")
    fidelity_samples: int = from_recipe("fidelity_samples")
    budget: AccuracyBudget = from_recipe("effective_budget")
    provider: str = from_device("provider")


@dataclass
class _Candidate:
    name: str
    family: str
    per_channel: bool
    path: Path | None
    excluded: tuple[str, ...] = ()
    outputs: tuple = ()
    meets_budget: bool = False
    violations: tuple[str, ...] = ()
    latency: object = None

    def to_dict(self, fp32_ms: float | None) -> dict:
        worst = min(self.outputs, key=lambda o: o.cosine) if self.outputs else None
        latency = self.latency.median_ms if self.latency else None
        return {
            "name": self.name, "family": self.family, "per_channel": self.per_channel,
            "nodes_in_fp32": list(self.excluded), "meets_budget": self.meets_budget,
            "violations": list(self.violations),
            "cosine": worst.cosine if worst else None, "relative_l2": worst.relative_l2 if worst else None,
            "top1_agreement": worst.top1_agreement if worst else None,
            "latency_ms": latency, "speedup_vs_fp32": fp32_ms / latency if latency and fp32_ms else None,
        }


class AutoQuantizationPass(OptimizationPass):
    name = "auto_quantization"
    title = "auto quantization"
    stage = Stage.QUANTIZE
    section = QUANTIZATION
    choices = {"auto": "Auto (measured, within budget)"}
    config_type = AutoQuantizationConfig
    accepts = "onnx"
    uses_inputs = True
    uses_device = True
    weight = 6.0

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        notes = [f"tries dynamic and static INT8, per-tensor and per-channel, keeps the most sensitive nodes in FP32 "
                 f"until {config.budget.text()} holds, then times each survivor and FP32 for "
                 f"{config.auto_seconds_per_candidate:g} s on {config.provider} and keeps the fastest"]
        return notes + [n for n in int8_expectations(traits, runner, dynamic=False) if "GPU" in n or "INT8 on" in n]

    def run(self, artifact: OnnxArtifact, config: AutoQuantizationConfig, context: PassContext) -> PassOutput:
        with quantizer_log_notes() as logged:
            output = _Search(artifact.path, config, context).run()
        output.notes.extend(logged)
        return output


class _Search:
    def __init__(self, source: Path, config: AutoQuantizationConfig, context: PassContext):
        self.source, self.config, self.context = source, config, context
        self.work = context.work_dir
        self.budget = config.budget
        self.notes: list[str] = []
        self.count = 0

    def run(self) -> PassOutput:
        context, config = self.context, self.config
        self.prepared = self._prepare()
        specs = FeedSpecs.of_onnx(self.source)
        self.feeds = context.inputs.fidelity_feeds(specs, config.fidelity_samples)
        self.samples = context.inputs.calibration_samples(specs, config.calibration_samples)
        self.calibration_cache = self.work / "calibration_ranges.json"
        self.reference = self._outputs(self.source)
        model = onnx_tools.load(self.prepared)
        sensitivity, candidates = {}, []
        for index, (family, per_channel) in enumerate(FAMILIES):
            name = f"{family}_int8_{'per_channel' if per_channel else 'per_tensor'}"
            span = (0.05 + 0.6 * index / len(FAMILIES), 0.05 + 0.6 * (index + 1) / len(FAMILIES))
            nodes = [n for n in excludable_nodes(model, dynamic=family == "dynamic")
                     if n[0] not in config.nodes_to_exclude]
            try:
                ranking, candidate = self._search_family(name, family, per_channel, nodes, span)
            except OptimizationError as error:  # one family the quantizer cannot build must not end the search
                ranking, candidate = [], _Candidate(name, family, per_channel, None,
                                                    violations=(f"could not be built: {error}",))
                self.notes.append(f"{name} left out: {error}")
            sensitivity[name] = [entry.to_dict() for entry in ranking]
            candidates.append(candidate)
        fp32 = _Candidate(FP32, FP32, False, self.source, meets_budget=True,
                          outputs=compare_outputs(self.reference, self.reference))
        survivors = [c for c in candidates if c.meets_budget] + [fp32]
        self._time(survivors)
        chosen = min(survivors, key=lambda c: (c.latency.median_ms, len(c.excluded)))
        fp32_ms = fp32.latency.median_ms
        reason = (f"fastest of {len(survivors)} candidate(s) meeting {self.budget.text()}: "
                  f"{chosen.latency.median_ms:.4f} ms vs FP32 {fp32_ms:.4f} ms (median, {config.provider})")
        if chosen is fp32:
            reason = self._keep_fp32_reason(candidates, survivors)
            _copy_model(self.source, context.output_path)
            self.notes.append(f"keep FP32: {reason}; the output is the given model, byte for byte")
        else:
            shutil.copyfile(chosen.path, context.output_path)
        report = {
            "budget": self.budget.text(),
            "fidelity_samples": len(self.feeds),
            "fidelity_data": context.inputs.describe_fidelity_data(config.fidelity_samples),
            "fidelity_is_synthetic": context.inputs.fidelity_is_synthetic,
            "sensitivity": sensitivity,
            "candidates": [c.to_dict(fp32_ms) for c in [*candidates, fp32]],
            "choice": chosen.name,
            "choice_nodes_in_fp32": list(chosen.excluded),
            "reason": reason,
        }
        return PassOutput(OnnxArtifact(context.output_path), report, self.notes)

    def _prepare(self) -> Path:
        """The model the quantizers work on: Constant weights folded, opset ≥ 13 (as the ONNX clean-up pass does)
        and ONNX Runtime's pre-processing; on copies, so the FP32 contender stays the file this pass was given."""
        cleaned = self.work / "cleaned.onnx"
        clean_up = PrepareOnnxPass().run(OnnxArtifact(self.source), PrepareOnnxConfig(),
                                         dataclasses.replace(self.context, output_path=cleaned))
        self.notes += [note for note in clean_up.notes if note != "nothing to fix"]
        prepared = self.work / "prepared.onnx"
        self.context.progress(0.01, "quant_pre_process")
        self.notes += pre_process(cleaned, prepared)
        return prepared

    def _keep_fp32_reason(self, candidates: list[_Candidate], survivors: list[_Candidate]) -> str:
        if len(survivors) > 1:
            fastest = min((c for c in survivors if c.name != FP32), key=lambda c: c.latency.median_ms)
            fp32 = next(c for c in survivors if c.name == FP32)
            return (f"FP32 was fastest ({fp32.latency.median_ms:.4f} ms vs {fastest.name} "
                    f"{fastest.latency.median_ms:.4f} ms, median on {self.config.provider})")
        best = max(candidates, key=lambda c: min((o.cosine for o in c.outputs), default=-1.0))
        return (f"no INT8 candidate met the budget {self.budget.text()} "
                f"(best: {best.name}, {best.violations[0] if best.violations else 'no figures'})")

    def _search_family(self, name: str, family: str, per_channel: bool, nodes, span):
        """Quantize all, then keep the most sensitive nodes in FP32 until the budget holds (or the cap is hit);
        no ranking when the fully quantized model meets the budget (on a large model it is most of the time)."""
        low, high = span
        progress = self.context.progress
        candidate = self._evaluate(name, family, per_channel, ())
        progress(low + 0.2 * (high - low), f"{name}: {'meets' if candidate.meets_budget else 'misses'} the budget")
        if candidate.meets_budget:
            return [], candidate
        ranking = self._rank(family, per_channel, nodes, candidate,
                             lambda f, m: progress(low + (0.2 + 0.5 * f) * (high - low), m))
        limit = min(self.config.auto_max_fp32_nodes, len(ranking) - 1)  # all in FP32 would not be INT8 at all
        excluded: list[str] = []
        for entry in ranking[:limit]:
            if candidate.meets_budget:
                break
            excluded.append(entry.node)
            candidate = self._evaluate(name, family, per_channel, tuple(excluded))
            progress(low + 0.9 * (high - low), f"{name}: {len(excluded)} node(s) in FP32")
        if not candidate.meets_budget:
            candidate.violations += (f"still misses the budget with {len(excluded)} of {len(nodes)} node(s) in FP32 "
                                     f"(limit: {self.config.auto_max_fp32_nodes}, and at least one must stay INT8)",)
        return ranking, candidate

    def _rank(self, family: str, per_channel: bool, nodes, full: _Candidate, progress):
        method = self.config.auto_sensitivity
        if method == "auto":
            method = "exclude_one" if len(nodes) <= EXCLUDE_ONE_LIMIT else "sqnr"
        if method == "sqnr" and family == "static":
            return qdq_sqnr_ranking(self.prepared, full.path, self.feeds[:8], nodes, self.work)
        if method == "sqnr":
            return weight_sqnr_ranking(onnx_tools.load(self.prepared), nodes, per_channel)
        baseline = max(o.relative_l2 for o in full.outputs)

        def error_without(node: str) -> float:
            trial = self._evaluate(full.name, family, per_channel, (node,))
            return max(o.relative_l2 for o in trial.outputs)

        return exclude_one(nodes, baseline, error_without, progress)

    def _evaluate(self, name: str, family: str, per_channel: bool, excluded: tuple[str, ...]) -> _Candidate:
        self.context.check_cancel()
        self.count += 1
        path = self.work / f"candidate_{self.count}.onnx"
        config = self.config
        kept = tuple(dict.fromkeys(config.nodes_to_exclude + excluded))
        if family == "dynamic":
            quantize_dynamic_model(self.prepared, path, DynamicInt8Config(
                reduce_range=config.reduce_range, nodes_to_exclude=kept, per_channel=per_channel))
        else:
            static = StaticInt8Config(
                reduce_range=config.reduce_range, nodes_to_exclude=kept, per_channel=per_channel,
                calibration_method=config.calibration_method, percentile=config.percentile,
                activation_type=config.activation_type, calibration_samples=config.calibration_samples)
            quantize_static_model(self.prepared, path, static, self.samples, self.context.cancel,
                                  lambda f, m: None, calibration_cache=self.calibration_cache)
        outputs = compare_outputs(self.reference, self._outputs(path))
        verdict = check_budget(outputs, self.budget)
        return _Candidate(name, family, per_channel, path, excluded, outputs, verdict.met, verdict.violations)

    def _outputs(self, path: Path):
        session = ModelRunner(load_model(path), self.context.runner)
        try:
            return session.run_all(self.feeds, self.context.cancel)
        finally:
            session.close()

    def _time(self, survivors: list[_Candidate]) -> None:
        handles = {c.name: load_model(c.path) for c in survivors}
        inputs = self.context.inputs.feed(FeedSpecs.of_onnx(self.source))
        latencies = measure_side_by_side(
            handles, inputs, self.context.runner, seconds_each=self.config.auto_seconds_per_candidate,
            threads=self.context.threads, cancel=self.context.cancel,
            progress=lambda f, m: self.context.progress(0.65 + 0.34 * f, m),
        )
        for candidate in survivors:
            candidate.latency = latencies[candidate.name]


def _copy_model(source: Path, target: Path) -> None:
    """The model as given, byte for byte; one whose weights live in other files is saved whole instead,
    since those files are named relative to the original's folder."""
    import onnx

    external = any(t.data_location == onnx.TensorProto.EXTERNAL
                   for t in onnx.load(str(source), load_external_data=False).graph.initializer)
    if external:
        onnx_tools.save(onnx_tools.load(source), target)
    else:
        shutil.copyfile(source, target)
