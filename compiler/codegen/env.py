"""The one Jinja2 environment of the back-end, with its filters and output checks.

Templates only loop and substitute: every decision (widths, loop bounds, pragmas, table
contents) is made in Python and arrives as plain strings and integers.

Generated files are run by other tools (Vitis sources `run_hls.tcl`, make runs the Makefile,
g++ compiles the sources), so a substituted string must not be able to add a command, a key
or a line of code. Every `{{ ... }}` output passes `_finalize`, which checks it against what is
inert in the target language of its template; a string that is not is a `CodegenError`, never
an injected command. Filters that build multi-line code (`c_array`) mark their output `Verbatim`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import jinja2

from spatten_hls.compiler.errors import CodegenError, brief
from spatten_hls.compiler.resources import templates_dir


class Verbatim(str):
    """Text built by a filter of this module from integers: exempt from the output check."""


# What a substituted string may contain, per target language. Tcl: no command substitution
# ([ ]), variables ($), separators (; newline), quoting ({ } " \) or comments (#); cfg and
# make: nothing that starts a new key, a comment, a variable or a recipe line.
_SHELL_LIKE = re.compile(r"[A-Za-z0-9 ._+/=,:-]*")
_INERT: dict[str, re.Pattern[str]] = {
    "tcl": _SHELL_LIKE,
    "cfg": _SHELL_LIKE,
    "make": _SHELL_LIKE,
    # C++: one line, no string delimiter, no comment end, no line continuation.
    "cpp": re.compile(r"(?:(?!\*/)[^\n\r\\\"])*"),
    # Markdown: any printable text, line breaks included.
    "md": re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]*"),
}


def language(template: str) -> str:
    name = template.removesuffix(".j2")
    if name == "Makefile":
        return "make"
    suffix = name.rsplit(".", 1)[-1]
    return {"tcl": "tcl", "cfg": "cfg", "md": "md", "h": "cpp", "cpp": "cpp"}[suffix]


@jinja2.pass_context
def _finalize(context: jinja2.runtime.Context, value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Verbatim):
        kind = language(context.name or "")
        if not _INERT[kind].fullmatch(value):
            raise CodegenError(
                f"{context.name}: refusing to substitute {brief(value)}: it is "
                f"not inert text in a {kind} file"
            )
    return value


def c_array(values: Iterable[int], per_line: int = 16) -> Verbatim:
    """Integers as the body of a C initializer list, `per_line` to a line."""
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return Verbatim(",\n    ".join(lines))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "hls")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
    )
    env.filters["c_array"] = c_array
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
