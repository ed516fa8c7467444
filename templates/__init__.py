"""Jinja2 templates of the generated Vitis HLS project (shipped as package data).

Located through `spatten_hls.compiler.resources.templates_dir()`, never through relative paths.
"""
