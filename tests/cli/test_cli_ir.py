"""`spatten ir`: outputs, the error contract (one `error:` line, exit 1; usage errors exit 2)
and deterministic output. Most tests run `main()` in-process; a few run the installed command
as a subprocess from a directory outside the repository."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spatten_hls.compiler import __version__
from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.config import Config
from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.frontend import PRESETS
from spatten_hls.compiler.frontend.builder import build_attention_graph
from spatten_hls.compiler.ir import from_json, print_ir, to_json
from spatten_hls.compiler.passes import DEFAULT_PIPELINE, run_pipeline


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err  # one line, like all errors
    return err


def spatten_command() -> list[str]:
    script = Path(sys.executable).parent / "spatten"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "spatten_hls.compiler.cli.main"]


def run_subprocess(cwd: Path, *args: str, seed: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run(
        [*spatten_command(), *args], cwd=cwd, env=env, capture_output=True, timeout=120, check=False
    )


# -- outputs ----------------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"spatten-hls {__version__}\n"


def test_ir_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["ir", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: spatten ir ")
    for option in (
        "MODEL",
        "--config",
        "--after",
        "--format",
        "-o",
        "--dump-ir-after-all",
        "bert-base",
        "smollm2-135m",
    ):
        assert option in out, option


def test_text_of_a_preset(capsys):
    code, out, err = run_cli(capsys, "ir", "bert-base")
    assert (code, err) == (0, "")
    assert out == print_ir(build_attention_graph(PRESETS["bert-base"], Config()))
    assert out.splitlines()[1] == "// properties: dense"
    assert "bits=none" in out and "bits=12" not in out


def test_after_all_shows_the_typed_graph(capsys):
    code, out, err = run_cli(capsys, "ir", "bert-base", "--after", "all")
    assert (code, err) == (0, "")
    assert "bits=12" in out and "bits=none" not in out
    assert "fixed<29,0>[128,128]" in out
    cfg = Config()
    g = build_attention_graph(PRESETS["bert-base"], cfg)
    assert out == print_ir(run_pipeline(g, cfg, DEFAULT_PIPELINE))


def test_after_a_named_pass(capsys):
    code, out, _ = run_cli(capsys, "ir", "minilm-l6", "--after", "assign-quant-types")
    assert code == 0
    assert "bits=12" in out
    assert "typed" in out.splitlines()[1]


def test_config_changes_the_output(capsys, tmp_path):
    cfg = tmp_path / "q.toml"
    cfg.write_text("[model]\nseq_len = 7\n[quantization]\nq_bits = 6\nv_bits = 5\n")
    code, out, err = run_cli(capsys, "ir", "gpt2-small", "--config", str(cfg), "--after", "all")
    assert (code, err) == (0, "")
    assert "seq_len=7" in out.splitlines()[0]
    # 6 + 12 - 1 + 6
    assert (
        "%l0.h0.qk = matmul_qk(%l0.h0.load_q, %l0.kv0.load_k) {head=0, kv_head=0, "
        "layer=0} : fixed<23,0>[7,7]" in out
    )
    last = [line for line in out.splitlines() if line.startswith("%l11.concat = ")]
    assert len(last) == 1 and ": fixed<5,0>[7,768] @ writeback  #" in last[0]
    assert last[0].endswith("# preset:gpt2-small/layer11")


def test_json_parses_and_round_trips(capsys):
    code, out, err = run_cli(capsys, "ir", "smollm2-135m", "--format", "json", "--after", "all")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["format"] == "spatten-ir"
    assert doc["info"]["num_kv_heads"] == 3
    g = from_json(out)
    assert to_json(g) == out
    assert "typed" in g.properties


def test_dot(capsys):
    code, out, err = run_cli(capsys, "ir", "minilm-l6", "--format", "dot")
    assert (code, err) == (0, "")
    assert out.startswith("digraph ")
    g = build_attention_graph(PRESETS["minilm-l6"], Config())
    assert len(re.findall(r'^\s+"[^"]+" \[label=', out, flags=re.M)) == len(g)
    assert (
        len(re.findall(r'^\s+"[^"]+" -> "[^"]+"', out, flags=re.M)) == g.nx_graph.number_of_edges()
    )


@pytest.mark.parametrize("fmt", ["text", "json", "dot"])
def test_output_file(capsys, tmp_path, fmt):
    code, expected, _ = run_cli(capsys, "ir", "gpt2-small", "--format", fmt)
    assert code == 0
    target = tmp_path / f"ir.{fmt}"
    code, out, err = run_cli(capsys, "ir", "gpt2-small", "--format", fmt, "-o", str(target))
    assert (code, out, err) == (0, "", "")
    assert target.read_text(encoding="utf-8") == expected
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temp files left


def test_output_file_overwrites(capsys, tmp_path):
    target = tmp_path / "ir.txt"
    target.write_text("old contents that are longer than nothing\n" * 1000)
    code, _, _ = run_cli(capsys, "ir", "minilm-l6", "--output", str(target))
    assert code == 0
    assert target.read_text().startswith("// spatten-ir model=minilm-l6 ")
    assert "old contents" not in target.read_text()


def test_dump_ir_after_all(capsys, tmp_path):
    dump = tmp_path / "dumps"
    code, out, _ = run_cli(capsys, "ir", "minilm-l6", "--dump-ir-after-all", str(dump))
    assert code == 0
    assert (dump / "00-input.ir.txt").read_text() == print_ir(
        build_attention_graph(PRESETS["minilm-l6"], Config())
    )
    assert (dump / "01-assign-quant-types.ir.txt").is_file()
    assert "bits=12" in (dump / "01-assign-quant-types.ir.txt").read_text()
    last = sorted(dump.iterdir())[-1]
    assert last.read_text() == out


def test_hf_config_file_model(capsys, tmp_path):
    path = tmp_path / "tiny-llama" / "config.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "hidden_size": 32,
                "max_position_embeddings": 64,
            }
        )
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nseq_len = 5\n")
    code, out, err = run_cli(capsys, "ir", str(path.parent), "--config", str(cfg))
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith(
        "// spatten-ir model=tiny-llama family=llama stage=summarization layers=2 heads=4 "
        "kv_heads=2 head_dim=8 seq_len=5 "
    )
    assert "%l1.h3.qk = matmul_qk(%l1.h3.load_q, %l1.kv1.load_k)" in out


# -- errors: exit 1, one `error:` line naming the culprit, no traceback -----------------------


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def bert_like(**overrides) -> str:
    cfg = {
        "model_type": "bert",
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_size": 64,
        "max_position_embeddings": 128,
    }
    cfg.update(overrides)
    return json.dumps(cfg)


def error_cases(tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (argv, fragments the error line must contain)."""
    bad_toml = write(tmp / "bad.toml", "[model\nseq_len = 3\n")
    unknown_key = write(tmp / "unknown.toml", "[model]\nsequence = 3\n")
    wrong_type = write(tmp / "type.toml", '[model]\nseq_len = "3"\n')
    too_long = write(tmp / "long.toml", "[model]\nseq_len = 513\n")
    kpl = write(tmp / "kpl.toml", "[token_pruning]\nkeep_per_layer = [0.9, 0.8]\n")
    gen = write(tmp / "gen.toml", '[model]\nstage = "generation"\n')
    bad_q = write(tmp / "q.toml", "[quantization]\nq_bits = 17\n")
    t5 = write(
        tmp / "t5" / "config.json",
        json.dumps({"model_type": "t5", "num_layers": 6, "num_heads": 8, "d_model": 512}),
    )
    heads = write(tmp / "odd" / "config.json", bert_like(hidden_size=100, num_attention_heads=3))
    broken_json = write(tmp / "broken" / "config.json", '{"model_type": "bert",')
    txt = write(tmp / "model.txt", "hello")
    (tmp / "empty_dir").mkdir()
    missing_model = str(tmp / "nowhere" / "config.json")
    missing_cfg = str(tmp / "absent.toml")
    out_missing = str(tmp / "no_such_dir" / "ir.txt")
    return {
        "bad-toml": (["bert-base", "--config", bad_toml], [bad_toml, "invalid TOML"]),
        "unknown-key": (["bert-base", "--config", unknown_key], [unknown_key, "'model.sequence'"]),
        "wrong-type": (
            ["bert-base", "--config", wrong_type],
            [wrong_type, "'model.seq_len'", "'3'"],
        ),
        "missing-config": (["bert-base", "--config", missing_cfg], [missing_cfg]),
        "missing-model-file": ([missing_model], [missing_model, "no such file"]),
        "unknown-preset": (["bert-bse"], ["'bert-bse'", "did you mean 'bert-base'"]),
        "unsupported-architecture": ([str(Path(t5).parent)], [t5, "'t5'"]),
        "inconsistent-heads": ([heads], [heads, "100", "3"]),
        "invalid-json": ([broken_json], [broken_json, "invalid JSON"]),
        "unsupported-file-type": ([txt], [txt, ".txt"]),
        "empty-model-dir": ([str(tmp / "empty_dir")], [str(tmp / "empty_dir")]),
        "seq-len-too-long": (
            ["bert-base", "--config", too_long],
            [too_long, "'model.seq_len'", "513", "512"],
        ),
        "keep-per-layer-length": (
            ["gpt2-small", "--config", kpl],
            [kpl, "'token_pruning.keep_per_layer'", "2 entries", "12 layers"],
        ),
        "generation-on-encoder": (["bert-base", "--config", gen], [gen, "'model.stage'"]),
        "q-bits-range": (["bert-base", "--config", bad_q], [bad_q, "'quantization.q_bits'", "17"]),
        "output-dir-missing": (["bert-base", "-o", out_missing], [out_missing, "does not exist"]),
        "unknown-after": (["bert-base", "--after", "nosuchpass"], ["--after", "'nosuchpass'"]),
    }


ERROR_NAMES = [
    "bad-toml",
    "unknown-key",
    "wrong-type",
    "missing-config",
    "missing-model-file",
    "unknown-preset",
    "unsupported-architecture",
    "inconsistent-heads",
    "invalid-json",
    "unsupported-file-type",
    "empty-model-dir",
    "seq-len-too-long",
    "keep-per-layer-length",
    "generation-on-encoder",
    "q-bits-range",
    "output-dir-missing",
    "unknown-after",
]


@pytest.mark.parametrize("case", ERROR_NAMES)
def test_error_contract(capsys, tmp_path, case):
    cases = error_cases(tmp_path)
    assert sorted(cases) == sorted(ERROR_NAMES)
    argv, fragments = cases[case]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out, err = run_cli(capsys, "ir", *argv)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    # nothing half-written is left behind
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_debug_shows_the_exception(capsys):
    with pytest.raises(FrontendError, match="bert-bse"):
        main(["ir", "--debug", "bert-bse"])
    with pytest.raises(FrontendError, match="bert-bse"):
        main(["--debug", "ir", "bert-bse"])


def test_usage_errors_exit_2(capsys):
    assert "the following arguments are required: MODEL" in usage_error(capsys, "ir")
    assert "invalid choice: 'xml'" in usage_error(capsys, "ir", "bert-base", "--format", "xml")
    assert "unrecognized arguments: --bogus" in usage_error(capsys, "ir", "bert-base", "--bogus")
    assert "required: COMMAND (see 'spatten --help')" in usage_error(capsys)
    assert "invalid choice: 'frobnicate'" in usage_error(capsys, "frobnicate")


# -- as an installed command, from outside the repository -------------------------------------


def test_subprocess_version_help_and_text(tmp_path):
    result = run_subprocess(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.decode() == f"spatten-hls {__version__}\n"
    result = run_subprocess(tmp_path, "ir", "--help")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("usage: spatten ir ")
    result = run_subprocess(tmp_path, "ir", "bert-base")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == print_ir(build_attention_graph(PRESETS["bert-base"], Config()))
    assert list(tmp_path.iterdir()) == []  # nothing written into the cwd


def test_subprocess_error_has_no_traceback(tmp_path):
    (tmp_path / "bad.toml").write_text("[model]\nseq_len = true\n")
    result = run_subprocess(tmp_path, "ir", "bert-base", "--config", "bad.toml")
    assert result.returncode == 1
    assert result.stdout == b""
    assert (
        result.stderr.decode() == "error: bad.toml: 'model.seq_len' must be an integer, got True\n"
    )
    result = run_subprocess(tmp_path, "ir")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


def test_subprocess_output_is_deterministic(tmp_path, capsys):
    args = ("ir", "gpt2-medium", "--after", "all", "--format", "json")
    first = run_subprocess(tmp_path, *args, seed="1")
    second = run_subprocess(tmp_path, *args, seed="2")
    assert first.returncode == second.returncode == 0
    assert len(first.stdout) > 100_000
    assert first.stdout == second.stdout
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    assert out.encode() == first.stdout
    g = from_json(first.stdout.decode())
    assert g.info.model == "gpt2-medium" and "typed" in g.properties
