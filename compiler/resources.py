"""The one place that locates files shipped with the package (works for wheels too)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def templates_dir() -> Path:
    """Directory of the Jinja2 templates (the top-level `templates` package)."""
    return Path(str(files("templates")))
