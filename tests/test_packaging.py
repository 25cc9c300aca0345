"""The package list in pyproject.toml names every package in the tree, so an install never drops one."""

import tomllib

from tests.conftest import REPO

TOP_LEVEL = ("core", "engine", "profilers", "storage", "studio")


def test_every_package_in_the_tree_is_listed_for_installation():
    # setup
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    # execute
    in_tree = {".".join(init.parent.relative_to(REPO).parts)
               for top in TOP_LEVEL for init in (REPO / top).rglob("__init__.py")}
    # assert
    assert in_tree - listed == set()
    assert listed - in_tree == {"studio.resources"}
