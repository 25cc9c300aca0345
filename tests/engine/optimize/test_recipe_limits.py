"""Recipes are read within limits (a regular file, UTF-8, bounded size, nesting and integers): each bad file is one
RecipeError naming it, never a RecursionError, a UnicodeDecodeError or a read that never ends (issue 14)."""

import pytest

from engine.errors import RecipeError
from engine.optimize.recipe import Recipe


@pytest.mark.parametrize(("content", "message"), [
    ('{"graph": {"level": "basic"}}'.encode("utf-16"), "not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
    (b'{"calibration": {"samples": ' + b"9" * 5000 + b"}}", "an integer of 5,000 digits"),
    (b'{"calibration": {"samples": ' + b"9" * 400 + b"}}", "an integer of 400 digits"),
    (b"{", "not valid JSON"),
])
def test_a_bad_recipe_file_is_one_recipe_error(tmp_path, content, message):
    path = tmp_path / "recipe.json"
    path.write_bytes(content)
    with pytest.raises(RecipeError, match=f"recipe.json: the recipe is {message}"):
        Recipe.load(path)


def test_a_device_file_is_refused_without_reading_it():
    with pytest.raises(RecipeError, match="/dev/zero: the recipe is not a regular file"):
        Recipe.load("/dev/zero")


def test_a_huge_recipe_file_is_refused(tmp_path, monkeypatch):
    from core import bounded_json

    monkeypatch.setattr(bounded_json, "MAX_BYTES", 100)
    path = tmp_path / "recipe.json"
    path.write_text('{"notes": "' + "x" * 200 + '"}')
    with pytest.raises(RecipeError, match="larger than"):
        Recipe.load(path)
