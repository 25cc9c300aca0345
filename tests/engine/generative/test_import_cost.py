import subprocess
import sys

from tests.conftest import REPO


def test_settings_and_results_import_without_torch():
    """The CLI validates generate-bench arguments before it pays for torch and transformers."""
    code = ("import sys, engine.generative, engine.generative.settings, engine.generative.results, "
            "engine.generative.model_folder, engine.generative.errors; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"
