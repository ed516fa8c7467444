"""`spatten sweep` and `spatten tune` end to end on Dask: a local cluster, an interrupted run
resumed, a failing point recorded, and a `dask scheduler` + `dask worker` pair started here as
separate processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.dse.pareto import pareto_front

pytest.importorskip("distributed")

CLI = [sys.executable, "-m", "spatten_hls.compiler.cli.main"]
# 2 x 2 x 2 points: kv_head with the cascade is refused by the config (4 points recorded as
# failing before any work), 32768 tokens fail in the worker (over the simulator's memory
# limit), the other two evaluate.
MIXED = """
[space]
"model.seq_len" = [64, 32768]
"token_pruning.keep" = [0.5, 1.0]
"token_pruning.granularity" = ["layer", "kv_head"]
"""
BASE = "[token_pruning]\nenabled = true\n[hardware]\nmax_tokens = 32768\n"


def records(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "results.jsonl").read_text().splitlines()]


def sweep_json(capsys, *argv) -> dict:
    assert main(["sweep", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_sweep_records_every_point_and_a_rerun_reuses_them(
    tmp_path, tiny_model, write_space, capsys
):
    (tmp_path / "base.toml").write_text(BASE)
    space = write_space(tmp_path, 'base = "base.toml"\n' + MIXED)
    out = tmp_path / "sweep"
    doc = sweep_json(
        capsys, str(tiny_model), "--space", str(space), "-o", str(out), "--workers", "1"
    )
    assert (doc["points"], doc["reused"], doc["evaluated"], doc["failed"], doc["lost"]) == (
        8,
        0,
        4,
        6,
        0,
    )
    got = records(out)
    assert len({r["id"] for r in got}) == 8
    by_status = {}
    for r in got:
        by_status.setdefault(r["status"], []).append(r)
    assert sorted(
        (r["point"]["model.seq_len"], r["point"]["token_pruning.keep"]) for r in by_status["ok"]
    ) == [(64, 0.5), (64, 1.0)]
    errors = [r["error"] for r in by_status["error"]]
    assert sum("needs a per-layer policy" in e for e in errors) == 4
    assert sum("over the 8 GiB limit" in e for e in errors) == 2
    ok = {r["point"]["token_pruning.keep"]: r["metrics"] for r in by_status["ok"]}
    assert ok[0.5]["dram_bytes"] < ok[1.0]["dram_bytes"]  # pruning reads less
    # the front written is the front of the records, in the objectives' order
    front = pareto_front(got, ["latency_cycles", "dram_bytes"])
    assert [r["id"] for r in doc["front"]] == [r["id"] for r in front]
    csv_rows = (out / "pareto.csv").read_text().splitlines()
    assert csv_rows[0] == (
        "id,model.seq_len,token_pruning.keep,token_pruning.granularity,latency_cycles,"
        "dram_bytes,fits"
    )
    assert [row.split(",")[0] for row in csv_rows[1:]] == [r["id"] for r in front]
    assert (out / "pareto.png").read_bytes().startswith(b"\x89PNG")
    before = {name: (out / name).read_bytes() for name in ("results.jsonl", "pareto.csv")}

    again = sweep_json(capsys, str(tiny_model), "--space", str(space), "-o", str(out))
    assert (again["reused"], again["evaluated"]) == (8, 0)  # no cluster needed, none redone
    assert {name: (out / name).read_bytes() for name in before} == before
    # the text summary of the same (reused) sweep
    assert main(["sweep", str(tiny_model), "--space", str(space), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].endswith(
        "8 points of " + str(space) + " (grid); 8 reused, 0 evaluated "
        "(0.00 points/s), 6 failed, in " + lines[0].rsplit(" in ", 1)[1]
    )
    assert lines[1] == f"Pareto front over latency_cycles, dram_bytes: {len(front)} points"
    assert lines[2] == (
        "| id | model.seq_len | token_pruning.keep | token_pruning.granularity "
        "| latency_cycles | dram_bytes |"
    )
    assert [line.split(" | ")[0].lstrip("| ") for line in lines[4 : 4 + len(front)]] == [
        r["id"] for r in front
    ]
    assert sum(line.startswith("failed ") for line in lines) == 5  # the first five
    assert lines[-1] == f"... 1 more failed points in {out}"
    assert printed.err.splitlines()[-1].startswith(f"wrote {out / 'results.jsonl'}")


def test_an_interrupted_sweep_resumes_without_losing_or_repeating_a_point(
    tmp_path, tiny_model, write_space, capsys
):
    space = write_space(
        tmp_path,
        '[space]\n"token_pruning.enabled" = [true]\n'
        '"token_pruning.keep" = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]\n'
        '"hardware.multipliers" = [256, 512]\n',
    )
    out = tmp_path / "sweep"
    argv = ["sweep", str(tiny_model), "--space", str(space), "-o", str(out), "--workers", "1"]
    proc = subprocess.Popen(CLI + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    results = out / "results.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_bytes().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-400:]
    done = len(records(out))
    assert 2 <= done < 16, "the sweep finished before it was interrupted"
    doc = sweep_json(
        capsys, str(tiny_model), "--space", str(space), "-o", str(out), "--workers", "1"
    )
    assert (doc["reused"], doc["evaluated"], doc["points"]) == (done, 16 - done, 16)
    ids = [r["id"] for r in records(out)]
    assert len(ids) == len(set(ids)) == 16
    assert all(r["status"] == "ok" for r in records(out))


def test_tune_writes_the_cheapest_config_that_meets_the_target(
    tmp_path, tiny_model, write_space, capsys
):
    (tmp_path / "base.toml").write_text(BASE)
    space = write_space(tmp_path, 'base = "base.toml"\n' + MIXED)
    best = tmp_path / "best.toml"
    # the sweep's results are reused from its directory
    argv = [
        "tune",
        str(tiny_model),
        "--space",
        str(space),
        "--target",
        "dram_reduction>=1",
        "--minimize",
        "dram_bytes",
        "-o",
        str(best),
        "--results",
        str(tmp_path / "s"),
        "--workers",
        "1",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "the least of the 2 of 2 evaluated points that meet dram_reduction>=1" in printed
    text = best.read_text()
    assert "# swept keys at this point: model.seq_len = 64, token_pruning.keep = 0.5" in text
    from spatten_hls.compiler.config import load_config

    cfg = load_config(best)
    assert (cfg.model.seq_len, cfg.token_pruning.keep, cfg.hardware.max_tokens) == (64, 0.5, 32768)
    assert main([*argv[:4], "--target", "dram_reduction>=100", *argv[6:]]) == 1
    assert "error: no point meets dram_reduction>=100" in capsys.readouterr().err


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text().strip():
        assert proc.poll() is None, "the scheduler exited"
        assert time.monotonic() < deadline, "the scheduler did not start"
        time.sleep(0.1)


def test_sweep_on_a_running_scheduler_and_worker(tmp_path, tiny_model, write_space, capsys):
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    worker = None
    try:
        _wait_for(scheduler_file, scheduler, 60)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        space = write_space(tmp_path, '[space]\n"token_pruning.enabled" = [true, false]\n')
        out = tmp_path / "sweep"
        doc = sweep_json(
            capsys, str(tiny_model), "--space", str(space), "-o", str(out), "--scheduler", address
        )
        assert (doc["points"], doc["evaluated"], doc["failed"]) == (2, 2, 0)
        assert all(r["metrics"]["latency_cycles"] > 0 for r in records(out))
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_an_unreachable_scheduler_is_one_error(
    tmp_path, tiny_model, write_space, capsys, monkeypatch
):
    from spatten_hls.compiler.dse import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    space = write_space(tmp_path, '[space]\n"token_pruning.enabled" = [true]\n')
    argv = [
        "sweep",
        str(tiny_model),
        "--space",
        str(space),
        "-o",
        str(tmp_path / "o"),
        "--scheduler",
        "tcp://127.0.0.1:9",
    ]
    assert main(argv) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"1 points, 0 already in {tmp_path / 'o' / 'results.jsonl'}, 1 to evaluate"
    assert lines[1].startswith("error: --scheduler tcp://127.0.0.1:9: cannot connect (OSError")
    assert len(lines) == 2
    assert (tmp_path / "o" / "results.jsonl").read_text() == ""  # nothing half-done


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scheduler", "127.0.0.1:8786"], "is not tcp://HOST:PORT"),
        (["--workers", "0"], "out of range"),
    ],
)
def test_bad_cluster_options_are_usage_errors(
    tmp_path, tiny_model, write_space, capsys, argv, message
):
    space = write_space(tmp_path, '[space]\n"token_pruning.enabled" = [true]\n')
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(tiny_model), "--space", str(space), "-o", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_without_the_sweep_extra_the_command_says_how_to_install_it(
    tmp_path, tiny_model, write_space, capsys, monkeypatch
):
    from spatten_hls.compiler import optional

    monkeypatch.setitem(optional.EXTRAS, "sweep", ("spatten_no_such_module",))
    space = write_space(tmp_path, '[space]\n"token_pruning.enabled" = [true]\n')
    for command in (
        ["sweep", "-o", str(tmp_path / "o")],
        ["tune", "--target", "dsp<1e9", "--minimize", "dsp", "-o", str(tmp_path / "b.toml")],
    ):
        argv = [command[0], str(tiny_model), "--space", str(space), *command[1:]]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: spatten ") and "pip install 'spatten-hls[sweep]'" in err
        assert err.count("\n") == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "b.toml").exists()
