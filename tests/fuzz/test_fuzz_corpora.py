"""Every fuzz harness over its seed corpus and the inputs fuzzing found so far (fuzz/crashers): each must end
in a typed error or work (issue 14). `make fuzz` explores further; this keeps what it found fixed."""

from pathlib import Path

import pytest

from fuzz.harnesses import HARNESSES

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
CASES = [(name, path) for name in HARNESSES for folder in ("corpus", "crashers")
         for path in sorted((FUZZ / folder / name).glob("*")) if path.is_file()]


def test_every_harness_has_seeds():
    assert {name for name, _ in CASES} == set(HARNESSES)


@pytest.mark.parametrize(("name", "path"), CASES, ids=[f"{path.parent.parent.name}/{name}/{path.name}" for name, path in CASES])
def test_a_known_input_ends_in_a_typed_error_or_works(name, path):
    HARNESSES[name](path.read_bytes())
