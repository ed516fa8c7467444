"""Bounded resources: declared sizes, parser limits, non-regular files, inputs archives,
absurd values and damaged projects all end in one `error:` line, quickly, before anything
large is allocated.

Each case runs the real command line in-process; the time bound is a hang guard (a hostile
size used to take minutes or end in MemoryError), not a speed goal.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from spatten_hls.compiler import limits
from spatten_hls.compiler.cli.main import main

HANG_GUARD_S = 30.0


def fails_cleanly(capsys, *argv: object, status: int = 1, fragments: tuple[str, ...] = ()) -> str:
    start = time.perf_counter()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # usage errors leave through argparse
        code = exc.code
    elapsed = time.perf_counter() - start
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == status, (argv, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert elapsed < HANG_GUARD_S, (argv, elapsed)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def hf_config(tmp_path: Path, **overrides: object) -> Path:
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_size": 64,
        "max_position_embeddings": 256,
    }
    cfg.update(overrides)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


# -- declared sizes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("num_attention_heads", 10**9, f"exceeds the limit of {limits.MAX_HEADS}"),
        ("num_hidden_layers", 10**9, f"exceeds the limit of {limits.MAX_LAYERS}"),
        ("num_key_value_heads", 10**9, f"exceeds the limit of {limits.MAX_HEADS}"),
        ("hidden_size", 10**12, f"exceeds the limit of {limits.MAX_HIDDEN}"),
        ("max_position_embeddings", 10**30, f"exceeds the limit of {limits.MAX_POSITIONS}"),
        ("head_dim", 10**6, f"exceeds the limit of {limits.MAX_HEAD_DIM}"),
    ],
)
def test_declared_model_sizes_have_limits(capsys, tmp_path, key, value, fragment) -> None:
    path = hf_config(tmp_path, **{key: value})
    fails_cleanly(capsys, "ir", path, fragments=(str(path), key))
    fails_cleanly(capsys, "simulate", path, fragments=(fragment,))


def test_the_whole_model_has_a_head_limit(capsys, tmp_path) -> None:
    path = hf_config(
        tmp_path,
        num_hidden_layers=200,
        num_attention_heads=200,
        num_key_value_heads=200,
        hidden_size=200 * 64,
    )
    fails_cleanly(capsys, "ir", path, fragments=("40000 attention heads", "limit"))


def test_a_workload_too_large_for_memory_is_refused_before_it_starts(capsys, tmp_path) -> None:
    path = hf_config(
        tmp_path,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        hidden_size=64,
        max_position_embeddings=1 << 15,
    )
    config = tmp_path / "long.toml"
    config.write_text(f"[model]\nseq_len = {1 << 15}\n")
    for command in ("simulate", "report"):
        fails_cleanly(capsys, command, path, "--config", config, fragments=("memory",))


def gguf_bytes(*, tensors: int = 0, keys: list[bytes] = (), version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, len(keys)) + b"".join(keys)


def gguf_string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def gguf_key(name: bytes, kind: int, payload: bytes) -> bytes:
    return gguf_string(name) + struct.pack("<I", kind) + payload


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (gguf_bytes(tensors=1 << 40), "tensors"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40), "metadata keys"),
        (gguf_bytes(keys=[gguf_key(b"a", 9, struct.pack("<IQ", 4, 1 << 40))]), "array elements"),
        (gguf_bytes(keys=[gguf_key(b"a", 8, struct.pack("<Q", 1 << 60))]), "bytes in a string"),
        (gguf_bytes(keys=[gguf_key(b"a", 9, struct.pack("<IQ", 9, 1) * 200)]), "nested deeper"),
        (gguf_bytes(keys=[gguf_key(b"a", 9, struct.pack("<IQ", 8, 10**6))]), "truncated"),
        (gguf_bytes(keys=[gguf_key(b"a", 42, b"")]), "unknown value type"),
        (gguf_bytes(version=1), "version"),
        (b"GGUF\x03\x00", "version"),
        (b"NOPE" + bytes(20), "bad magic"),
    ],
)
def test_gguf_counts_and_lengths_are_checked_before_parsing(
    capsys, tmp_path, blob, fragment
) -> None:
    path = tmp_path / "hostile.gguf"
    path.write_bytes(blob)
    fails_cleanly(capsys, "ir", path, fragments=(str(path), fragment))


def test_gguf_metadata_declaring_huge_shapes(capsys, tmp_path) -> None:
    import gguf

    path = tmp_path / "big.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(10**9)
    writer.add_head_count(10**9)
    writer.add_embedding_length(64)
    writer.add_context_length(128)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    fails_cleanly(capsys, "ir", path, fragments=("llama.block_count", "exceeds the limit"))


# -- parser limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"model_type": "llama", "num_hidden_layers": ' + "9" * 5000 + "}", "digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, "nested too deeply"),
    ],
)
def test_json_parser_limits_are_one_line_errors(capsys, tmp_path, text, fragment) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    fails_cleanly(capsys, "ir", path, fragments=(str(path), fragment))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bounds")
    model = root / "tiny.json"
    model.write_text(
        '{"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 16, "n_positions": 32}'
    )
    config = root / "c.toml"
    config.write_text("[model]\nseq_len = 6\n[token_pruning]\nenabled = true\nskip_first = 0\n")
    assert main(["compile", str(model), "--config", str(config), "-o", str(root / "prj")]) == 0
    return root / "prj"


def edited(project: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "prj"
    shutil.copytree(project, copy)
    ir = copy / "ir" / "final.ir.json"
    doc = json.loads(ir.read_text())
    result = edit(doc)
    ir.write_text(result if isinstance(result, str) else json.dumps(doc))
    return copy


def _set(path: list, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _node_attr(kind: str, attr: str, value):
    def edit(doc):
        for node in doc["graph"]["nodes"]:
            if node["kind"] == kind:
                node["attrs"][attr] = value

    return edit


def _drop_node(kind: str):
    def edit(doc):
        victim = next(n["id"] for n in doc["graph"]["nodes"] if n["kind"] == kind)
        doc["graph"]["nodes"] = [n for n in doc["graph"]["nodes"] if n["id"] != victim]
        doc["graph"]["edges"] = [
            e for e in doc["graph"]["edges"] if victim not in (e["source"], e["target"])
        ]

    return edit


EDITS = {
    "more-layers-in-info": _set(["info", "num_layers"], 3),
    "fewer-layers-in-info": _set(["info", "num_layers"], 1),
    "more-heads-in-info": _set(["info", "num_heads"], 4),
    "seq-len-in-info": _set(["info", "seq_len"], 7),
    "huge-seq-len": _set(["info", "seq_len"], 10**9),
    "string-layer-count": _set(["info", "num_layers"], "2"),
    "5000-digit-int": _set(["info", "head_dim"], int("9" * 4000)),
    "string-attr": _node_attr("load_q", "tokens", "6"),
    "huge-tokens": _node_attr("load_k", "tokens", 10**12),
    "negative-head": _node_attr("matmul_qk", "head", -1),
    "float-bits": _node_attr("load_v", "bits", 12.5),
    "keep-above-context": _node_attr("token_select", "keep", 999),
    "bool-causal-string": _node_attr("causal_mask", "q_offset", None),
    "no-head-concat": _drop_node("head_concat"),
    "no-softmax": _drop_node("softmax"),
    "unknown-kind": _node_attr("scale", "factor", float("nan")),
    "deep-nesting": lambda doc: "[" * 100_000 + "]" * 100_000,
    "not-an-object": lambda doc: "[1, 2, 3]",
    "truncated": lambda doc: json.dumps(doc)[:500],
    "nodes-not-a-list": _set(["graph", "nodes"], {"a": 1}),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_report_on_an_edited_project_ir_is_one_error(capsys, project, tmp_path, edit) -> None:
    copy = edited(project, tmp_path, EDITS[edit])
    fails_cleanly(capsys, "report", copy)


def test_report_on_an_ir_that_disagrees_with_the_config(capsys, project, tmp_path) -> None:
    copy = tmp_path / "prj"
    shutil.copytree(project, copy)
    config = copy / "config.toml"
    config.write_text(config.read_text().replace("seq_len = 6", "seq_len = 5"))
    fails_cleanly(capsys, "report", copy, fragments=("info.seq_len", "disagrees"))


@pytest.mark.csim
def test_csim_fails_on_golden_files_of_the_wrong_size(project, tmp_path) -> None:
    """A golden file grown or cut stops the testbench with one error line naming it (the two
    C-simulations run side by side, each its own `spatten csim` process)."""
    copies = []
    for change in ("grown", "shrunk"):
        copy = tmp_path / change
        shutil.copytree(project, copy)
        out = copy / "tb" / "data" / "out.bin"
        data = out.read_bytes()
        out.write_bytes(data + bytes(4096) if change == "grown" else data[:-2])
        copies.append(copy)
    command = [sys.executable, "-m", "spatten_hls.compiler.cli.main", "csim"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(
            pool.map(
                lambda copy: subprocess.run(
                    [*command, str(copy)], capture_output=True, text=True, timeout=600
                ),
                copies,
            )
        )
    for copy, run in zip(copies, runs, strict=True):
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1, (copy.name, run.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
        assert "Traceback" not in run.stderr
        assert "out.bin holds" in lines[0] and "the design expects" in lines[0], lines[0]


# -- non-regular files -------------------------------------------------------------------------


def test_devices_fifos_and_directories_are_refused_as_inputs(capsys, tmp_path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    gguf_fifo = tmp_path / "model.gguf"
    os.mkfifo(gguf_fifo)
    json_fifo = tmp_path / "m.json"
    os.mkfifo(json_fifo)
    for special in (Path("/dev/zero"), fifo, tmp_path):
        fails_cleanly(capsys, "ir", "bert-base", "--config", special, fragments=(str(special),))
        fails_cleanly(
            capsys, "simulate", "bert-base", "--inputs", special, fragments=(str(special),)
        )
    fails_cleanly(capsys, "ir", gguf_fifo, fragments=("not a regular file",))
    fails_cleanly(capsys, "ir", json_fifo, fragments=("not a regular file",))


def test_a_text_file_that_is_a_fifo_or_device(capsys, tmp_path) -> None:
    pytest.importorskip("tokenizers")
    fifo = tmp_path / "text"
    os.mkfifo(fifo)
    for special in (Path("/dev/zero"), fifo):
        fails_cleanly(
            capsys, "eval", "minilm-l6", "--text-file", special, fragments=("not a regular file",)
        )


def test_an_oversized_file_is_refused_unread(capsys, tmp_path) -> None:
    path = tmp_path / "huge.toml"
    with open(path, "wb") as handle:  # sparse: costs no disk
        handle.truncate(limits.FILE_LIMITS["config file"] + 1)
    fails_cleanly(capsys, "ir", "bert-base", "--config", path, fragments=("limit",))


# -- inputs archives and arguments ---------------------------------------------------------------


def npz(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"q0.npy": b"hello"}, "'q0' is not a valid .npy array"),
        ({"notes.txt": b"x"}, "member 'notes.txt' is not an .npy array"),
        ({"q0.npy": npy_header((10**6, 10**6, 10**3))}, "'q0' has shape"),
        ({"out0.npy": npy_header((10**6, 10**6, 10**3))}, "too large"),
        ({"q0.npy": npy_header((12, 8, 64), "|O")}, "'q0' has dtype"),
        ({"q0.npy": npy_header((12, 8, 64))}, "'q0' holds 0 data bytes"),
    ],
)
def test_inputs_archive_members_are_checked_before_their_data(
    capsys, tmp_path, members, fragment
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[model]\nseq_len = 8\n")
    path = npz(tmp_path / "in.npz", members)
    fails_cleanly(
        capsys,
        "simulate",
        "bert-base",
        "--config",
        config,
        "--inputs",
        path,
        fragments=(str(path), fragment),
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "bert-base", "--seed", "-1"],
        ["compile", "bert-base", "-o", "x", "--seed", "1e3"],
        ["report", "bert-base", "--seed", str(1 << 70)],
    ],
)
def test_out_of_range_arguments_are_usage_errors(capsys, argv) -> None:
    fails_cleanly(capsys, *argv, status=2, fragments=("--seed",))
