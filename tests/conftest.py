"""Shared pytest options: `--update-golden` rewrites golden files instead of comparing."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE = "SPATTEN_CACHE_DIR"


def pytest_configure(config: pytest.Config) -> None:
    # Builds that outlive a command (the csim testbench cache) go to a directory of this test
    # session, inherited by the subprocesses the tests start: no run starts warm from another.
    os.environ[_CACHE] = tempfile.mkdtemp(prefix="spatten-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop(_CACHE, ""), ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/golden/ from the current output"
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
