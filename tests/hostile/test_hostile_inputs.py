"""A fuzz corpus of hostile inputs, run through the real command line.

Every case is a command plus the files it reads, built deterministically (seeded mutations of
valid configs, model files, GGUF headers, inputs archives, project IRs, output paths and
arguments). A case passes when the command either succeeds (some mutations are valid inputs)
or fails with exactly one `error:` line and exit status 1 (2 for usage), with no traceback, no
`internal error`, within the hang guard, and without touching the `victim/` directory or
leaving temporaries behind.

    python tests/hostile/test_hostile_inputs.py        # every case in its own process, with
                                                       # a 60 s timeout, and the totals
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

TINY = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_size": 64,
    "max_position_embeddings": 64,
}
CONFIG = {
    "model": {"seq_len": 8},
    "token_pruning": {"enabled": True, "skip_first": 0.0},
    "value_pruning": {"enabled": True},
    "quantization": {"progressive": True},
}
HOSTILE_VALUES: list[object] = [
    -1,
    0,
    1,
    2**31,
    2**63,
    10**30,
    10**400,
    1.5,
    1e308,
    -1e308,
    "nan",
    "inf",
    True,
    False,
    "",
    "x",
    "a\nb",
    'x"]; exec touch pwned; #',
    "\x1b[31m",
    [],
    [1, 2],
    {},
    {"a": 1},
    [[[[[1]]]]],
    "ü" * 1000,
]
HANG_GUARD_S = 60.0
Files = dict[str, bytes | str | None]  # relative path -> contents; None makes a FIFO


@dataclass
class Case:
    name: str
    argv: list[str]
    files: Files = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None  # extra filesystem set-up (links, dirs)


# -- corpus ------------------------------------------------------------------------------------


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value in ("nan", "inf") else json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def config_text(cfg: dict) -> str:
    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
        for section, table in cfg.items()
    )


def config_cases() -> Iterator[Case]:
    from spatten_hls.compiler.config import SECTIONS

    rng = random.Random(1)
    for section, cls in SECTIONS.items():
        for key in cls.__dataclass_fields__:
            for value in rng.sample(HOSTILE_VALUES, 6):
                cfg = json.loads(json.dumps(CONFIG))
                cfg.setdefault(section, {})[key] = value
                yield Case(
                    f"config {section}.{key}={str(value)[:20]!r}",
                    ["ir", "tiny.json", "--config", "c.toml", "--after", "all"],
                    {"tiny.json": json.dumps(TINY), "c.toml": config_text(cfg)},
                )
    raw = [
        b"",
        b"\xff\xfe[model]",
        b"[model",
        b"[model]\nseq_len = 1\nseq_len = 2\n",
        b"[[model]]\n",
        b"a = " + b"[" * 3000 + b"]" * 3000,
        b"\x00" * 64,
        b"[model]\nseq_len = " + b"9" * 6000,
        b"[unknown]\nx = 1\n",
        "[模型]\n".encode(),
    ]
    for index, text in enumerate(raw):
        yield Case(
            f"config raw {index}",
            ["ir", "tiny.json", "--config", "c.toml"],
            {"tiny.json": json.dumps(TINY), "c.toml": text},
        )


def model_cases() -> Iterator[Case]:
    rng = random.Random(2)
    for key in TINY:
        for value in rng.sample(HOSTILE_VALUES, 8):
            cfg = dict(TINY, **{key: value})
            yield Case(
                f"config.json {key}={str(value)[:20]!r}",
                ["ir", "m/config.json"],
                {"m/config.json": json.dumps(cfg)},
            )
    for name, text in {
        "array": "[]",
        "null": "null",
        "number": "7",
        "deep": "[" * 200_000,
        "digits": '{"n_layer": ' + "1" * 5000 + "}",
        "bad-utf8": b"\xc3(",
        "arch-list": '{"architectures": [1, 2]}',
        "empty": "",
        "no-type": '{"hidden_size": 64}',
    }.items():
        yield Case(f"config.json {name}", ["ir", "m/config.json"], {"m/config.json": text})
    yield Case("model dir with two ggufs", ["ir", "m"], {"m/a.gguf": b"GGUF", "m/b.gguf": b""})
    yield Case("model is a fifo", ["ir", "m.json"], {"m.json": None})


def tiny_gguf() -> bytes:
    import gguf

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.gguf"
        writer = gguf.GGUFWriter(path, "llama")
        writer.add_name("tiny")
        writer.add_block_count(2)
        writer.add_head_count(4)
        writer.add_head_count_kv(2)
        writer.add_embedding_length(64)
        writer.add_context_length(128)
        writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        writer.close()
        return path.read_bytes()


def gguf_cases() -> Iterator[Case]:
    valid = tiny_gguf()
    rng = random.Random(3)
    for cut in sorted(rng.sample(range(len(valid)), 30)):
        yield Case(f"gguf truncated at {cut}", ["ir", "t.gguf"], {"t.gguf": valid[:cut]})
    for index in range(40):
        blob = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            offset = rng.randrange(4, min(len(blob), 200))
            blob[offset : offset + 8] = struct.pack(
                "<Q", rng.choice([0, 1, 2**31, 2**40, 2**63, 2**64 - 1, rng.getrandbits(64)])
            )[: len(blob[offset : offset + 8])]
        yield Case(f"gguf mutated {index}", ["ir", "t.gguf"], {"t.gguf": bytes(blob)})


def inputs_npz(members: dict[str, np.ndarray | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in members.items():
            if isinstance(value, np.ndarray):
                data = io.BytesIO()
                np.save(data, value, allow_pickle=False)
                value = data.getvalue()
            archive.writestr(name, value)
    return buffer.getvalue()


def npz_cases() -> Iterator[Case]:
    shapes = {f"{t}{layer}": ((4 if t == "q" else 2), 8, 16) for layer in range(2) for t in "qkv"}
    good = {f"{name}.npy": np.zeros(shape, np.float32) for name, shape in shapes.items()}
    variants: dict[str, dict] = {
        "valid": good,
        "missing key": {k: v for k, v in good.items() if k != "v1.npy"},
        "extra text member": {**good, "notes.txt": b"hi"},
        "wrong shape": {**good, "q0.npy": np.zeros((4, 8, 15), np.float32)},
        "object dtype": {
            **good,
            "q0.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', "
            b"'fortran_order': False, 'shape': (4, 8, 16), }" + b" " * 60 + b"\n",
        },
        "nan": {**good, "k1.npy": np.full((2, 8, 16), np.nan, np.float32)},
        "float64 overflow": {**good, "v0.npy": np.full((2, 8, 16), 1e300)},
        "complex": {**good, "q1.npy": np.zeros((4, 8, 16), np.complex64)},
        "truncated member": {**good, "q0.npy": b"\x93NUMPY"},
    }
    cfg = config_text({"model": {"seq_len": 8}})
    for name, members in variants.items():
        yield Case(
            f"npz {name}",
            ["simulate", "tiny.json", "--config", "c.toml", "--inputs", "in.npz"],
            {"tiny.json": json.dumps(TINY), "c.toml": cfg, "in.npz": inputs_npz(members)},
        )
    for name, blob in {"not a zip": b"PK\x03\x04junk", "empty": b"", "npy": b"\x93NUMPY"}.items():
        yield Case(
            f"npz {name}",
            ["simulate", "tiny.json", "--config", "c.toml", "--inputs", "in.npz"],
            {"tiny.json": json.dumps(TINY), "c.toml": cfg, "in.npz": blob},
        )


def project_ir() -> str:
    from spatten_hls.compiler.config import config_from_dict
    from spatten_hls.compiler.driver import compile_spec
    from spatten_hls.compiler.frontend.hf_config import spec_from_hf_config
    from spatten_hls.compiler.ir.serialize import to_json

    cfg = config_from_dict(CONFIG, "c.toml")
    return to_json(compile_spec(spec_from_hf_config(TINY, "tiny.json"), cfg).graph)


def leaf_paths(doc: object, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from leaf_paths(value, (*path, index))
    else:
        yield path


def ir_cases() -> Iterator[Case]:
    text = project_ir()
    doc = json.loads(text)
    paths = list(leaf_paths(doc))
    rng = random.Random(4)
    files = {"prj/config.toml": config_text(CONFIG)}
    for index in range(80):
        mutated = json.loads(text)
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(paths)
            node = mutated
            for key in parents:
                node = node[key]
            node[last] = rng.choice(HOSTILE_VALUES)
        yield Case(
            f"ir mutated {index}",
            ["report", "prj"],
            {**files, "prj/ir/final.ir.json": json.dumps(mutated)},
        )
    for cut in (0, 1, 100, len(text) // 2, len(text) - 2):
        yield Case(
            f"ir truncated at {cut}",
            ["report", "prj"],
            {**files, "prj/ir/final.ir.json": text[:cut]},
        )


def make_links(root: Path) -> None:
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "plain.txt").write_text("plain")


def output_cases() -> Iterator[Case]:
    targets = [
        "victim/nosuch/..",
        "victim/keep.txt/x",
        "loop_a",
        "loop_a/x",
        "dangling/x",
        "plain.txt/..",
        "fifo",
        "victim",
        "x" * 5000,
        "a\nb/c",
        "nosuch/dir/file",
    ]
    base = {"tiny.json": json.dumps(TINY), "c.toml": config_text(CONFIG), "fifo": None}
    for target in targets:
        for argv in (
            ["ir", "tiny.json", "--config", "c.toml", "-o", target],
            ["compile", "tiny.json", "--config", "c.toml", "-o", target],
            ["simulate", "tiny.json", "--config", "c.toml", "--save", target],
            ["ir", "tiny.json", "--config", "c.toml", "--dump-ir-after-all", target],
        ):
            yield Case(f"output {argv[0]} {argv[-2]} {target[:20]!r}", argv, base, make_links)


def argument_cases() -> Iterator[Case]:
    for option in ("--seed", "--sentences", "--tokens", "--prompt"):
        for value in ("-1", "1e3", "x", str(10**40), "", "0x10"):
            command = "simulate" if option == "--seed" else "eval"
            yield Case(f"argument {option} {value!r}", [command, "bert-base", option, value])
    for argv in (
        ["ir"],
        ["ir", "bert-base", "--format", "xml"],
        ["bogus"],
        [],
        ["ir", "bert-base", "--after", "nope"],
        ["csim", "nowhere"],
        ["report", "victim"],
        ["ir", "/dev/zero"],
        ["ir", "bert-base", "--config", "/dev/zero"],
    ):
        yield Case(f"argument {argv}", argv)


def corpus() -> list[Case]:
    return [
        *config_cases(),
        *model_cases(),
        *gguf_cases(),
        *npz_cases(),
        *ir_cases(),
        *output_cases(),
        *argument_cases(),
    ]


# -- running a case ----------------------------------------------------------------------------


def prepare(case: Case, root: Path) -> dict[str, bytes]:
    victim = root / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("years of work")
    for relative, content in case.files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            os.mkfifo(path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
    if case.setup is not None:
        case.setup(root)
    return snapshot(victim)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def judge(
    case: Case, root: Path, before: dict[str, bytes], code: int, err: str, elapsed: float
) -> str | None:
    """None when the case behaved; else what went wrong."""
    lines = err.strip().splitlines()
    if elapsed > HANG_GUARD_S:
        return f"took {elapsed:.0f} s"
    if "Traceback" in err or "internal error" in err:
        return f"crashed: {err.strip()[-300:]}"
    if code != 0:
        if code not in (1, 2) or len(lines) != 1 or not lines[0].startswith("error: "):
            return f"exit {code}, stderr {err!r:.300}"
    after = snapshot(root / "victim") if (root / "victim").is_dir() else {}
    if any(after.get(name) != data for name, data in before.items()):
        return "changed or removed a file of victim/"
    stray = [p.name for p in root.rglob(".*") if ".spatten-" in p.name or p.suffix == ".tmp"]
    if stray:
        return f"left temporaries {stray}"
    return None


CORPUS = corpus()


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_case(case: Case, tmp_path: Path, monkeypatch, capsys) -> None:
    from spatten_hls.compiler.cli.main import main

    before = prepare(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    try:
        code = main(case.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    elapsed = time.perf_counter() - start
    problem = judge(case, tmp_path, before, code, capsys.readouterr().err, elapsed)
    assert problem is None, f"{case.name}: {problem}"


def run_in_subprocesses() -> int:
    """Every case in a fresh process with a 60 s timeout; prints totals."""
    totals = {"accepted": 0, "rejected": 0, "failed": 0}
    for case in CORPUS:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            before = prepare(case, root)
            start = time.perf_counter()
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "spatten_hls.compiler.cli.main", *case.argv],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    timeout=HANG_GUARD_S,
                )
                code, err = done.returncode, done.stderr
            except subprocess.TimeoutExpired:
                code, err = -1, "timeout"
            problem = (
                judge(case, root, before, code, err, time.perf_counter() - start)
                if err != "timeout"
                else "hung"
            )
        if problem:
            totals["failed"] += 1
            print(f"FAIL {case.name}: {problem}")
        else:
            totals["accepted" if code == 0 else "rejected"] += 1
    print(
        f"{len(CORPUS)} cases: {totals['rejected']} rejected with one error line, "
        f"{totals['accepted']} accepted (valid inputs), {totals['failed']} failed"
    )
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(run_in_subprocesses())
