"""The one place that locates files shipped with the package (works for wheels too).

The repository folder `templates/` installs as `spatten_hls.templates`, next to
`spatten_hls.compiler`; it is found through the import system, which knows both an installed
wheel and an editable checkout.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from spatten_hls.compiler.errors import CodegenError

TEMPLATES_PACKAGE = "spatten_hls.templates"
_MARKER = Path("hls") / "params.h.j2"


def templates_dir() -> Path:
    """Directory of the Jinja2 templates and hand-written engine headers."""
    spec = importlib.util.find_spec(TEMPLATES_PACKAGE)
    if spec is not None and spec.origin is not None:
        found = Path(spec.origin).parent
        if (found / _MARKER).is_file():
            return found
    raise CodegenError(
        f"spatten-hls templates not found ({TEMPLATES_PACKAGE}); reinstall the package"
    )
