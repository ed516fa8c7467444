"""`spatten simulate`: the documented JSON and text outputs, --save/--inputs, the error
contract (one `error:` line, exit 1, nothing written) and determinism. Runs `main()`
in-process, plus one run of the installed `spatten` script from a directory outside the
repository."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.driver import compile_model
from spatten_hls.compiler.sim import simulate

REPO = Path(__file__).resolve().parents[2]
SMOLLM_GEN = REPO / "examples" / "configs" / "smollm2-generation.toml"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """bert-base at 16 tokens: every layer, fast."""
    return write_config(tmp_path, "[model]\nseq_len = 16\n", "small.toml")


def row(bits: int, d: int = 64) -> int:
    return math.ceil(bits * d / 8)


# -- JSON -----------------------------------------------------------------------------------


def test_bert_base_json_documented_keys_and_values(capsys) -> None:
    code, out, err = run_cli(capsys, "simulate", "bert-base", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert {
        "model",
        "stage",
        "seq_len",
        "gen_tokens",
        "layers_count",
        "heads",
        "kv_heads",
        "head_dim",
        "seed",
        "layers",
        "dram_bytes",
        "dense_dram_bytes",
        "dram_reduction",
        "kv_read_fraction",
        "rel_err_vs_float",
    } <= doc.keys()
    assert (doc["model"], doc["stage"], doc["seq_len"], doc["gen_tokens"]) == (
        "bert-base",
        "summarization",
        128,
        0,
    )
    assert (doc["layers_count"], doc["heads"], doc["kv_heads"], doc["head_dim"], doc["seed"]) == (
        12,
        12,
        12,
        64,
        0,
    )
    assert [r["layer"] for r in doc["layers"]] == list(range(12))
    for r in doc["layers"]:
        assert {
            "layer",
            "tokens_in",
            "kept_tokens",
            "heads_kept",
            "values_fetched",
            "requant_fraction",
            "rel_err_vs_float",
        } <= r.keys()
        assert r["tokens_in"] == 128 and r["kept_tokens"] == list(range(128))
        assert r["heads_kept"] == list(range(12))
        assert r["values_fetched"] == 12 * 128 * 128  # non-causal: every query sees every key
        assert r["requant_fraction"] == 0.0
        assert 0 < r["rel_err_vs_float"] <= 1e-2
    rows = 12 * 12 * 128  # layers * (kv) heads * tokens
    dram = doc["dram_bytes"]
    assert dram == {
        "q": rows * row(12),
        "k_msb": rows * row(8),
        "k_lsb": rows * row(4),
        "v": rows * row(12),
        "total": 3 * rows * row(12),
    }
    assert doc["dense_dram_bytes"] == dram["total"] and doc["dram_reduction"] == 1.0
    assert doc["kv_read_fraction"] == 1.0  # dense: every layer reads every key
    assert 0 < doc["rel_err_vs_float"] <= max(r["rel_err_vs_float"] for r in doc["layers"])
    # exactly what the library computes
    expected = simulate(compile_model("bert-base", None).graph).to_json_dict()
    assert doc == json.loads(json.dumps(expected))


def test_text_summary(capsys, small: Path) -> None:
    code, out, err = run_cli(capsys, "simulate", "bert-base", "--config", small)
    assert code == 0 and err == ""
    total = 3 * 12 * 12 * 16 * row(12)  # q, k (8 + 4 bits), v: three 12-bit planes
    assert out.startswith(
        "bert-base: 12 layers x 12 heads (12 KV heads), head_dim 64, summarization, 16 tokens\n"
    )
    assert f"DRAM read: {total:,} bytes" in out
    assert f"dense 12-bit baseline {total:,} bytes; reduction 1.00x" in out
    assert "max |y_sim - y_float| / max |y_float| = " in out
    layer_lines = [line for line in out.splitlines() if line[:5].strip().isdigit()]
    assert [int(line.split()[0]) for line in layer_lines] == list(range(12))
    assert all(
        line.split()[1:5] == ["16", "16", "12->12", str(12 * 16 * 16)] for line in layer_lines
    )


def test_generation_example_config(capsys) -> None:
    code, out, err = run_cli(capsys, "simulate", "smollm2-135m", "--config", SMOLLM_GEN, "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert (doc["model"], doc["stage"], doc["seq_len"], doc["gen_tokens"]) == (
        "smollm2-135m",
        "generation",
        256,
        32,
    )
    assert (doc["layers_count"], doc["heads"], doc["kv_heads"]) == (30, 9, 3)
    cache = sum(256 + t + 1 for t in range(32))  # K/V rows per KV head over all steps
    assert all(r["tokens_in"] == 288 and r["values_fetched"] == 9 * cache for r in doc["layers"])
    dram = doc["dram_bytes"]
    assert dram["q"] == 30 * 9 * 32 * row(12)
    assert dram["k_msb"] == 30 * 3 * cache * row(8)
    assert dram["k_lsb"] == 30 * 3 * cache * row(4)
    assert dram["v"] == 30 * 3 * cache * row(12)
    assert doc["dense_dram_bytes"] == dram["total"]
    assert 0 < doc["rel_err_vs_float"] <= 1e-2


def test_seed_changes_the_run(capsys, small: Path) -> None:
    docs = {}
    for seed in ("0", "1"):
        code, out, _ = run_cli(
            capsys, "simulate", "bert-base", "--config", small, "--json", "--seed", seed
        )
        assert code == 0
        docs[seed] = json.loads(out)
    assert (docs["0"]["seed"], docs["1"]["seed"]) == (0, 1)
    assert docs["0"]["rel_err_vs_float"] != docs["1"]["rel_err_vs_float"]
    assert docs["0"]["dram_bytes"] == docs["1"]["dram_bytes"]  # same workload


# -- --save / --inputs ----------------------------------------------------------------------


def test_save_writes_documented_arrays_and_inputs_reproduce(capsys, tmp_path, small) -> None:
    first = tmp_path / "first.npz"
    code, out1, err = run_cli(
        capsys, "simulate", "bert-base", "--config", small, "--json", "--save", first
    )
    assert code == 0 and err == ""
    with np.load(first) as data:
        saved = {k: data[k] for k in data.files}
    assert sorted(saved) == sorted(
        f"{t}{i}" for t in ("q", "k", "v", "out", "ref") for i in range(12)
    )
    for key, array in saved.items():
        assert array.shape == (12, 16, 64) and array.dtype == np.float32, key
    assert np.abs(saved["out3"] - saved["ref3"]).max() > 0  # sim and reference differ a bit

    second = tmp_path / "second.npz"
    code, out2, err = run_cli(
        capsys,
        "simulate",
        "bert-base",
        "--config",
        small,
        "--json",
        "--inputs",
        first,
        "--save",
        second,
    )
    assert code == 0 and err == ""
    doc1, doc2 = json.loads(out1), json.loads(out2)
    assert doc2["seed"] is None
    del doc1["seed"], doc2["seed"]
    assert doc1 == doc2
    with np.load(second) as data:
        for key, array in saved.items():
            assert np.array_equal(data[key], array), key

    # deterministic: the same run writes a byte-identical file
    third = tmp_path / "third.npz"
    assert run_cli(capsys, "simulate", "bert-base", "--config", small, "--save", third)[0] == 0
    assert third.read_bytes() == first.read_bytes()


def test_save_generation_has_zero_prompt_rows(capsys, tmp_path) -> None:
    cfg = write_config(tmp_path, '[model]\nstage = "generation"\nseq_len = 8\ngen_tokens = 4\n')
    path = tmp_path / "gen.npz"
    code, _, err = run_cli(capsys, "simulate", "smollm2-135m", "--config", cfg, "--save", path)
    assert code == 0 and err == ""
    with np.load(path) as data:
        assert data["q0"].shape == (9, 12, 64) and data["k29"].shape == (3, 12, 64)
        out, ref = data["out29"], data["ref29"]
    assert out.shape == ref.shape == (9, 12, 64)
    assert not out[:, :8].any() and not ref[:, :8].any()
    assert np.abs(out[:, 8:]).min(axis=-1).max() > 0 and np.abs(ref[:, 8:]).max() > 0


# -- errors ---------------------------------------------------------------------------------


def valid_arrays(tmp_path: Path, small: Path, capsys) -> dict[str, np.ndarray]:
    path = tmp_path / "valid.npz"
    assert run_cli(capsys, "simulate", "bert-base", "--config", small, "--save", path)[0] == 0
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k[0] in "qkv"}
    path.unlink()
    return arrays


def _wrong_key(a):
    a["w0"] = a.pop("q0")


def _wrong_shape(a):
    a["k5"] = a["k5"][:, :8]


def _nan(a):
    a["v2"][0, 1, 2] = np.nan


def _inf(a):
    a["q7"][3, 3, 3] = np.inf


@pytest.mark.parametrize(
    "spoil,needle",
    [
        (_wrong_key, "q0"),
        (_wrong_shape, "k5"),
        (_nan, "v2"),
        (_inf, "q7"),
    ],
    ids=["wrong-keys", "wrong-shape", "nan", "inf"],
)
def test_bad_inputs_file(capsys, tmp_path, small, spoil, needle: str) -> None:
    arrays = valid_arrays(tmp_path, small, capsys)
    spoil(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    save = tmp_path / "out.npz"
    code, out, err = run_cli(
        capsys, "simulate", "bert-base", "--config", small, "--inputs", bad, "--save", save
    )
    assert_one_error(code, out, err, needle, str(bad))
    assert not save.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "small.toml"]


def assert_one_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_missing_and_unreadable_inputs(capsys, tmp_path, small) -> None:
    missing = tmp_path / "absent.npz"
    text = write_config(tmp_path, "hello\n", "notes.npz")
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros(3))
    for path in (missing, text, npy):
        save = tmp_path / "out.npz"
        code, out, err = run_cli(
            capsys, "simulate", "bert-base", "--config", small, "--inputs", path, "--save", save
        )
        assert_one_error(code, out, err, str(path))
        assert not save.exists()


def test_save_into_missing_directory(capsys, tmp_path, small) -> None:
    target = tmp_path / "nowhere" / "out.npz"
    code, out, err = run_cli(capsys, "simulate", "bert-base", "--config", small, "--save", target)
    assert_one_error(code, out, err, str(target.parent))
    assert not target.parent.exists()


def test_generation_config_on_an_encoder(capsys, tmp_path) -> None:
    cfg = write_config(tmp_path, '[model]\nstage = "generation"\nseq_len = 16\n')
    save = tmp_path / "out.npz"
    code, out, err = run_cli(capsys, "simulate", "bert-base", "--config", cfg, "--save", save)
    assert_one_error(code, out, err, "model.stage", "bert-base")
    assert not save.exists()


def test_usage_error_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "bert-base", "--seed", "abc"])
    assert info.value.code == 2
    assert capsys.readouterr().out == ""


# -- the installed command --------------------------------------------------------------------


def spatten_command() -> list[str]:
    script = Path(sys.executable).parent / "spatten"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "spatten_hls.compiler.cli.main"]


def test_installed_script_from_another_directory(tmp_path, small, capsys) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = subprocess.run(
        [*spatten_command(), "simulate", "bert-base", "--config", str(small), "--json"],
        cwd=cwd,
        capture_output=True,
        timeout=180,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "1"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr == b""  # no progress bar without a terminal
    assert list(cwd.iterdir()) == []
    code, out, _ = run_cli(capsys, "simulate", "bert-base", "--config", small, "--json")
    assert code == 0 and proc.stdout.decode() == out  # byte-identical across processes
