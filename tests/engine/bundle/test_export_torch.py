"""Bundles of PyTorch sources: TorchScript and torch.export programs that predict.py runs with plain torch."""

from __future__ import annotations

import json
import textwrap

import pytest

from engine.bundle.export import (
    BundleError,
    BundleRequest,
    export_bundle,
    verify_bundle,
)
from engine.errors import InputError
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.recipe import GraphSettings, Recipe

FACTORY = textwrap.dedent("""
    import torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.relu(self.fc(x)) * 2


    def make():
        return Net()
""")


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(FACTORY)
    return load_model(f"{path}:make")


@pytest.mark.parametrize(("bundle_format", "model_file"), [("torchscript", "model.pt"), ("pt2", "model.pt2")])
def test_torch_bundle_runs_with_plain_torch_and_matches_the_studio(tmp_path, factory, bundle_format, model_file):
    # setup
    request = BundleRequest(model=factory, output=tmp_path / "bundle", format=bundle_format,
                            inputs=InputRequest(shapes={"x": (2, 4)}))
    # execute
    result = export_bundle(request)
    report = verify_bundle(result.path, run_predict=True)
    manifest = json.loads((result.path / "manifest.json").read_text())
    # assert
    assert manifest["model"]["files"] == [model_file] and manifest["runtime"]["backend"] == "torch"
    assert manifest["model"]["inputs"][0]["shape"] == [2, 4] and manifest["model"]["outputs"][0]["shape"] == [2, 3]
    assert "import torch" in (result.path / "predict.py").read_text()
    assert [(o.name, o.shape, o.max_abs_diff) for o in report.outputs] == [("output", [2, 3], 0.0)]


def test_a_torch_source_without_shapes_is_refused_cleanly(tmp_path, factory):
    # execute / assert
    with pytest.raises(InputError, match="'x': the model does not record its shape; give it as x=DIMS"):
        export_bundle(BundleRequest(model=factory, output=tmp_path / "bundle", format="torchscript"))
    with pytest.raises(BundleError, match="a recipe cannot produce torchscript"):
        export_bundle(BundleRequest(model=factory, output=tmp_path / "bundle", format="torchscript",
                                    recipe=Recipe(graph=GraphSettings(level="basic"))))
    assert list(tmp_path.iterdir()) == [tmp_path / "net.py"]
