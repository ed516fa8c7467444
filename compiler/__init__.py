"""spatten-hls: a high-level-synthesis compiler for SpAtten-style sparse attention."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spatten-hls")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
