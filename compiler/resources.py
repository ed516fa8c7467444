"""The one place that locates files shipped with the package (works for wheels too).

`templates/` is installed as a top-level package next to `compiler/` (site-packages or the
source tree). It is found from this file's location rather than by importing `templates`: a
directory of that common name in the current directory would otherwise shadow it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from compiler.errors import CodegenError

_MARKER = Path("hls") / "params.h.j2"


def templates_dir() -> Path:
    """Directory of the Jinja2 templates and hand-written engine headers."""
    beside = Path(__file__).resolve().parent.parent / "templates"
    if (beside / _MARKER).is_file():
        return beside
    spec = importlib.util.find_spec("templates")
    if spec is not None and spec.origin is not None:
        found = Path(spec.origin).parent
        if (found / _MARKER).is_file():
            return found
    raise CodegenError(f"spatten-hls templates not found (looked in {beside}); reinstall the "
                       "package")
