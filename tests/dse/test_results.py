"""DIR/results.jsonl: appended whole, a torn last line dropped, a foreign line refused."""

from __future__ import annotations

import json

import pytest

from spatten_hls.compiler.dse.results import ResultStore, locked
from spatten_hls.compiler.errors import CompilerError, OutputError


def record(ident):
    return {"id": ident, "point": {"k": 1}, "status": "ok", "metrics": {"x": 1}, "error": None}


def test_append_then_load(tmp_path):
    with ResultStore(tmp_path) as store:
        store.append(record("a"))
        store.append(record("b"))
    again = ResultStore(tmp_path)
    assert again.load() == 2
    assert list(again.records) == ["a", "b"]


def test_a_torn_last_line_is_dropped_and_the_file_repaired(tmp_path):
    with ResultStore(tmp_path) as store:
        store.append(record("a"))
    path = tmp_path / "results.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "b", "poi')  # a crash mid-write
    store = ResultStore(tmp_path)
    assert store.load() == 1
    assert path.read_bytes() == whole
    with store:
        store.append(record("c"))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "c"]


@pytest.mark.parametrize(
    ("line", "message"),
    [("not json", "invalid JSON"), ('{"id": 3}', "needs id, point and status"), ("[1]", "needs")],
)
def test_a_foreign_line_is_refused_naming_it(tmp_path, line, message):
    (tmp_path / "results.jsonl").write_text(json.dumps(record("a")) + "\n" + line + "\n")
    with pytest.raises(CompilerError, match=rf"results.jsonl:2: .*{message}"):
        ResultStore(tmp_path).load()


def test_rewrite_puts_the_space_order_first_and_keeps_other_records(tmp_path):
    with ResultStore(tmp_path) as store:
        for ident in ("c", "old", "a", "b"):
            store.append(record(ident))
    store.rewrite(["a", "b", "c", "missing"])
    ids = [json.loads(line)["id"] for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert ids == ["a", "b", "c", "old"]


def test_a_second_sweep_into_the_same_directory_is_refused(tmp_path):
    with locked(tmp_path):
        with pytest.raises(OutputError, match="another sweep is writing"):
            with locked(tmp_path):
                pass
    with locked(tmp_path):  # released
        pass
