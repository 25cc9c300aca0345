"""The one Jinja2 template every report renders (resources/templates/report.html.j2), with its number filters.

A run's report, a comparison and a bundle's report.html read alike because they share it. A value that was not
measured reads "n/a", never 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files

from studio import __version__

TOOL_NAME = "Open-AutoGLM Studio"
TEMPLATE = "report.html.j2"
MISSING = "n/a"


def render(context: dict) -> str:
    return _environment().get_template(TEMPLATE).render(
        tool_name=TOOL_NAME, tool_version=__version__,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **context)


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape

    folder = files("studio.resources") / "templates"
    environment = Environment(loader=FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
                              autoescape=select_autoescape(default=True, default_for_string=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(num=_number, size=_size, dims=_dims, energy=_energy)
    return environment


def _number(value, digits: int = 4) -> str:
    if value is None:
        return MISSING
    return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.{digits}g}"


def _size(value) -> str:
    if value is None:
        return MISSING
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def _dims(shape) -> str:
    return "unknown rank" if shape is None else ("scalar" if not shape else " × ".join("?" if d is None else str(d)
                                                                                    for d in shape))


def _energy(joules: float) -> str:
    return f"{joules * 1e3:.4g} mJ"
