"""The one Jinja2 environment of the back-end, with its filters.

Templates only loop and substitute: every decision (widths, loop bounds, pragmas, table
contents) is made in Python and arrives as plain strings and integers.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import jinja2

from spatten_hls.compiler.resources import templates_dir


def c_array(values: Iterable[int], per_line: int = 16) -> str:
    """Integers as the body of a C initializer list, `per_line` to a line."""
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "hls")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["c_array"] = c_array
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
