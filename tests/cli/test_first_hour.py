"""A newcomer's first hour: missing extras named with their install command, one top-level
package in the wheel, csim progress and a summary that says what was compared, a report with
units, plots that say what they show, and a large simulation error explained."""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import zipfile
from pathlib import Path

import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.perf.plot import report_figure

REPO = Path(__file__).resolve().parents[2]
MODEL_JSON = '{"model_type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64}'


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(MODEL_JSON)
    return path


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("safetensors", ["eval", "minilm-l6"], "realmodels"),
        ("tokenizers", ["eval", "smollm2-135m"], "realmodels"),
        ("matplotlib", ["report", "bert-base", "--plot", "r.png"], "plot"),
    ],
)
def test_a_missing_extra_is_one_line_with_its_install_command(
    capsys, monkeypatch, tmp_path, module, argv, extra
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert f"pip install 'spatten-hls[{extra}]'" in err and module in err
    assert list(tmp_path.iterdir()) == []


def test_the_wheel_claims_one_top_level_package(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: setuptools builds in the tree it is given
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "compiler", "kernels", "templates"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(
            REPO / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}),
        )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("spatten_hls-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {
        name.split("/")[0]
        for name in names
        if not name.split("/")[0].endswith((".dist-info", ".data"))
    }
    assert top == {"spatten_hls"}
    packaged = {n for n in names if n.startswith("spatten_hls/")}
    for folder, package in (
        ("compiler", "compiler"),
        ("kernels", "kernels"),
        ("templates", "templates"),
    ):
        sources = {
            f"spatten_hls/{package}/{p.relative_to(REPO / folder)}"
            for p in (REPO / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        assert sources <= packaged, sorted(sources - packaged)[:5]
    entry = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "spatten = spatten_hls.compiler.cli.main:main" in entry


@pytest.mark.csim
def test_csim_shows_progress_on_a_terminal_and_says_what_it_compared(model, tmp_path) -> None:
    cfg = config(tmp_path, "[model]\nseq_len = 6\n")
    assert main(["compile", str(model), "--config", str(cfg), "-o", str(tmp_path / "p")]) == 0
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    done = subprocess.run(
        [sys.executable, "-m", "spatten_hls.compiler.cli.main", "csim", str(tmp_path / "p")],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        timeout=300,
    )
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    assert done.returncode == 0
    run, measured, estimate, verdict = done.stdout.splitlines()
    assert run.startswith("golden run: layers 0-1, seq_len ")
    assert measured.startswith("DRAM bytes at the ports: ") and estimate.startswith("cycles (")
    assert verdict == "2 layers + pruning state: 3 passed, 0 failed"
    assert b"build (g++)" in terminal and b"layers" in terminal and b"invocation" in terminal


def test_the_report_has_units_and_says_what_compute_means(capsys) -> None:
    assert main(["report", "bert-base"]) == 0
    text = capsys.readouterr().out
    header, units = text.splitlines()[2:4]
    assert header.split()[:3] == ["layer", "tokens", "heads"]
    assert units.split() == [
        "in->kept",
        "in->kept",
        "bytes",
        "cycles",
        "cycles",
        "cycles",
        "cycles",
        "cycles",
    ]
    assert "1024 multipliers: 512 in Q·K + 512 in prob·V (8 keys/cycle each" in text
    assert "cycles: the emitted loop nest (requested IIs met); compute = busy cycles" in text
    assert "integer ops (2 per MAC done)" in text and "GOP/s" in text and "FLOP" not in text


def test_report_plot_names_what_it_shows_and_says_where_it_went(capsys, tmp_path) -> None:
    cfg = config(tmp_path, "[model]\nseq_len = 32\n[token_pruning]\nenabled = true\n")
    png = tmp_path / "r.png"
    assert main(["report", "gpt2-small", "--config", str(cfg), "--plot", str(png)]) == 0
    err = capsys.readouterr().err
    assert err == f"wrote {png}\n" and png.read_bytes()[:4] == b"\x89PNG"


def test_the_figure_names_model_config_part_and_labels_the_peak(tmp_path) -> None:
    from spatten_hls.compiler.driver import compile_model
    from spatten_hls.compiler.perf import performance_report
    from spatten_hls.compiler.sim import simulate

    cfg = config(tmp_path, "[model]\nseq_len = 32\n[token_pruning]\nenabled = true\n")
    compiled = compile_model("gpt2-small", cfg)
    report = performance_report(
        simulate(compiled.graph, reference=False), compiled.graph.lowered_plan(), "c.toml"
    )
    figure = report_figure(report)
    title = figure._suptitle.get_text()
    assert "gpt2-small" in title and "c.toml" in title and "xcu280-fsvh2892-2L-e" in title
    roofline, per_layer = figure.axes[:2]
    labels = [t.get_text() for t in roofline.texts]
    assert any(t.startswith("peak 614 GOP/s") for t in labels)
    line = roofline.get_lines()[0].get_xdata()
    point = report.roofline.op_per_byte
    assert min(line) < point / 8 and max(line) > point * 8  # drawn past the design point
    bars = {label for label in per_layer.get_legend_handles_labels()[1]}
    assert {"tokens entering", "tokens kept"} <= bars
    kept = [bar.get_height() for bar in per_layer.containers[1]]
    assert kept == [row.kept_tokens for row in report.layers] and kept[-1] < kept[0]


def test_a_large_simulation_error_is_explained(capsys, model, tmp_path) -> None:
    cfg = config(
        tmp_path,
        "[model]\nseq_len = 48\n[quantization]\nprogressive = true\n"
        "k_msb_bits = 2\nk_lsb_bits = 10\nrequant_threshold = 0.01\n"
        "[value_pruning]\nenabled = true\nkeep = 0.9\n",
    )
    assert main(["simulate", str(model), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert notes[0].startswith(
        "note: the error is relative to float64 attention over the same surviving tokens and heads"
    )
    assert "without value pruning:" in notes[1] and "with all 12 K bits for every row:" in notes[1]
    assert notes[2] == (
        "note: the largest part comes from the rows computed with only K's 2 "
        "MSB bits (max prob >= 0.01)"
    )


def test_a_small_simulation_error_needs_no_explanation(capsys) -> None:
    assert main(["simulate", "bert-base"]) == 0
    assert "note:" not in capsys.readouterr().out
