"""Every use case the CLI and the GUI share, in one place and one naming scheme (verb_object), Qt-free.

    from studio import usecases
    outcome = usecases.benchmark_model(usecases.BenchRequest(model="model.onnx"), cancel=cancel, progress=progress)

Long use cases take `cancel` (a threading.Event) and `progress(fraction, message)`; results are typed objects.
Where a use case can return two kinds, the result is a union (`BenchOutcome = BenchReport | ScenarioReport`)
that callers tell apart by type.
"""

from studio.usecases.bench_plan import BenchRequest
from studio.usecases.bench_reports import BenchOutcome, BenchReport, ScenarioReport
from studio.usecases.benchmark import LiveFeed, benchmark_model
from studio.usecases.bundles import (
    ExportRequest,
    export_deployment_bundle,
    new_signing_key,
    verify_deployment_bundle,
)
from studio.usecases.generation import (
    GenerateReport,
    GenerateRequest,
    ModelUnderTest,
    benchmark_generation,
)
from studio.usecases.models import list_devices, model_macs, open_model, sample_models
from studio.usecases.optimization import (
    OptimizeReport,
    OptimizeRequest,
    default_optimized_path,
    optimization_options,
    optimize_model,
    plan_optimization_for,
)
from studio.usecases.profiles import (
    ProfileReport,
    ProfilingOverhead,
    compare_run_profiles,
    load_run_profile,
    profile_model,
)
from studio.usecases.runs import (
    ComparisonView,
    annotate_run,
    compare_runs,
    compare_with_samples,
    delete_run,
    export_run,
    import_run_file,
    list_runs,
    load_run,
    move_store_aside,
    open_store,
)
from studio.usecases.sweeps import (
    SweepRecipe,
    SweepReport,
    SweepRequest,
    parse_list,
    sweep_model,
    thread_count,
)
from studio.usecases.telemetry import monitor_telemetry, open_sampler

__all__ = [
    "BenchOutcome", "BenchReport", "BenchRequest", "ComparisonView", "ExportRequest", "GenerateReport",
    "GenerateRequest", "LiveFeed", "ModelUnderTest", "OptimizeReport", "OptimizeRequest", "ProfileReport", "ProfilingOverhead",
    "ScenarioReport", "SweepRecipe", "SweepReport", "SweepRequest",
    "annotate_run", "benchmark_generation", "benchmark_model", "compare_run_profiles", "compare_runs",
    "compare_with_samples", "default_optimized_path", "delete_run", "export_deployment_bundle", "export_run",
    "import_run_file", "list_devices", "list_runs", "load_run", "load_run_profile", "model_macs", "monitor_telemetry", "move_store_aside",
    "new_signing_key", "open_model", "open_sampler", "open_store", "optimization_options", "optimize_model", "parse_list",
    "plan_optimization_for", "profile_model", "sample_models", "sweep_model", "thread_count", "verify_deployment_bundle",
]
