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


# The longest test files start first, longest first: under `-n auto --dist loadfile
# --no-loadscope-reorder` files start in this order, and a long file that started last would
# run alone at the end while the other workers sit idle.
LONGEST_FIRST = (
    "tests/codegen/test_csim_bitexact.py",
    "tests/test_readme.py",
    "tests/realmodels/test_eval_policies.py",
    "tests/codegen/test_csim_measured.py",
    "tests/realmodels/test_eval.py",
    "tests/codegen/test_csim_property.py",
    "tests/cli/test_bounds.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its order
