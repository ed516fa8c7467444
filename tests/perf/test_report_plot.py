"""`spatten report --plot` writes a PNG (roofline and per-layer plot)."""

from __future__ import annotations

from spatten_hls.compiler.cli.main import main


def test_report_plot_writes_a_png(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nseq_len = 16\n[token_pruning]\nenabled = true\nkeep = 0.5\n")
    png = tmp_path / "report.png"
    assert main(["report", "gpt2-small", "--config", str(cfg), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "latency" in capsys.readouterr().out


def test_report_plot_into_a_missing_directory_fails(tmp_path, capsys):
    assert main(["report", "gpt2-small", "--plot", str(tmp_path / "no" / "r.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and err.count("\n") == 1
