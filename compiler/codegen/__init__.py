"""HLS back-end: render contexts (Python decides), Jinja2 templates (only substitute)."""
