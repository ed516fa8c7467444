"""Every writer keeps the user's data: resolved output paths, crash-safe replacement, one error
line for unwritable / read-only / full / not-a-directory targets, and the user's umask.

Crash safety is checked by killing a real process (SIGKILL) at each step of a replacement,
then checking that the directory holds exactly the old tree or exactly the new one.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spatten_hls.compiler import output_dir, outputs
from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.errors import OutputError

MODEL_JSON = '{"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 64}'
CONFIG = "[model]\nseq_len = 6\n"


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "tiny.json"
    path.write_text(MODEL_JSON)
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    return path, config


def writers(model: Path, config: Path, target: Path) -> dict[str, list[object]]:
    """Every command that writes, with `target` as what it writes."""
    return {
        "ir -o": ["ir", model, "--config", config, "-o", target],
        "simulate --save": ["simulate", model, "--config", config, "--save", target],
        "--dump-ir-after-all": ["ir", model, "--config", config, "--dump-ir-after-all", target],
        "report --plot": ["report", model, "--config", config, "--plot", target],
        "compile -o": ["compile", model, "--config", config, "-o", target],
    }


# -- resolving the output path -----------------------------------------------------------------


def test_a_missing_directory_then_dotdot_is_not_its_parent(capsys, tmp_path, model) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    before = tree(victim)
    for name, argv in writers(*model, victim / "nosuch" / "..").items():
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, name
        one_error(err, "nosuch", "does not exist")
        assert tree(victim) == before, name


def test_symlink_loops_and_paths_through_files_are_one_error(capsys, tmp_path, model) -> None:
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    plain = tmp_path / "plain.txt"
    plain.write_text("a file")
    cases = {
        tmp_path / "loop_a": "symbolic links",
        tmp_path / "loop_a" / "x": "symbolic links",
        plain / "x": "not a directory",
        plain / ".." / "x": "not a directory",
    }
    for target, fragment in cases.items():
        for name, argv in writers(*model, target).items():
            code, _, err = run_cli(capsys, *argv)
            assert code == 1, (name, target)
            one_error(err, fragment)
    assert plain.read_text() == "a file"


def test_a_device_or_fifo_is_never_replaced_by_a_file(capsys, tmp_path, model) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run_cli(capsys, "ir", model[0], "--config", model[1], "-o", fifo)
    assert code == 1
    one_error(err, "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    # A device is refused the same way (checked without a command that could replace it).
    with pytest.raises(OutputError, match="not a regular file"):
        outputs.output_file(Path("/dev/null"))


def test_a_symlinked_output_file_writes_its_target(capsys, tmp_path, model) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    (tmp_path / "link.txt").symlink_to(real)
    assert (
        run_cli(capsys, "ir", model[0], "--config", model[1], "-o", tmp_path / "link.txt")[0] == 0
    )
    assert (tmp_path / "link.txt").is_symlink() and real.read_text().startswith("// spatten-ir")


# -- crash safety of --force ---------------------------------------------------------------------

KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from spatten_hls.compiler import output_dir as od

target, point = Path(sys.argv[1]), sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)

def after(fn):
    def wrapped(*args, **kwargs):
        result = fn(*args, **kwargs)
        die()
        return result
    return wrapped

def before(fn):
    def wrapped(*args, **kwargs):
        die()
        return fn(*args, **kwargs)
    return wrapped

if point == "staged":
    od._fill = after(od._fill)
elif point == "exchanged":
    od._exchange = after(od._exchange)
elif point == "cleaning":
    od.shutil.rmtree = before(od.shutil.rmtree)
elif point == "between-renames":  # a filesystem without RENAME_EXCHANGE
    def unsupported(a, b):
        raise OSError(22, "Invalid argument")
    od._exchange = unsupported
    real, calls = od.os.rename, []
    def rename(a, b):
        real(a, b)
        calls.append(a)
        if len(calls) == 1:
            die()
    od.os.rename = rename
files = {"a.txt": b"new", "sub/b.txt": b"new" * 1000}
od.write_tree(files, target, force=True)
"""
NEW = {"a.txt": b"new", "sub/b.txt": b"new" * 1000}


def kill_during_replacement(target: Path, point: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(target), point],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.mark.parametrize("point", ["staged", "exchanged", "cleaning"])
def test_sigkill_at_every_step_leaves_the_old_or_the_new_tree(tmp_path, point) -> None:
    target = tmp_path / "prj"
    (target / "src").mkdir(parents=True)
    (target / "src" / "old.h").write_text("old project")
    old = tree(target)
    kill_during_replacement(target, point)
    assert tree(target) in (old, NEW)
    # The next run removes what the killed one left, and nothing else is beside the project.
    notes = output_dir.write_tree(NEW, target, force=True)
    assert tree(target) == NEW
    assert [p.name for p in tmp_path.iterdir()] == ["prj"]
    assert notes and all("removed" in note and "interrupted run" in note for note in notes)


def test_sigkill_between_two_renames_names_the_old_tree(tmp_path) -> None:
    target = tmp_path / "prj"
    target.mkdir()
    (target / "old.h").write_text("old project")
    kill_during_replacement(target, "between-renames")
    assert not target.exists()
    left = [p for p in tmp_path.iterdir() if ".spatten-old-" in p.name]
    assert len(left) == 1 and tree(left[0]) == {"old.h": b"old project"}
    notes = output_dir.write_tree(NEW, target, force=True)
    assert tree(target) == NEW
    assert any(str(left[0]) in note and "move that back" in note for note in notes)
    assert left[0].exists()  # named, never deleted: it may be the only copy


INTERRUPT_SCRIPT = """
import os, signal, sys
from spatten_hls.compiler import output_dir as od
from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.errors import OutputError

real = od._exchange
def exchange(a, b):
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the new project is being put in place
    real(a, b)
od._exchange = exchange
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_the_commit_still_completes_and_reports_success(tmp_path, model) -> None:
    target = tmp_path / "prj"
    target.mkdir()
    (target / "old.h").write_text("old")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            INTERRUPT_SCRIPT,
            "compile",
            str(model[0]),
            "--config",
            str(model[1]),
            "-o",
            str(target),
            "--force",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "interrupted" not in done.stderr and done.stdout.startswith(f"wrote {target} (")
    assert (target / "src" / "params.h").is_file() and not (target / "old.h").exists()


# -- permissions -------------------------------------------------------------------------------


def modes(path: Path) -> set[int]:
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    return {stat.S_IMODE(p.stat().st_mode) for p in paths}


def test_outputs_get_the_users_umask_not_private_modes(capsys, tmp_path, model) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    files, dirs = 0o666 & ~mask, 0o777 & ~mask  # 0644 and 0755 under the usual 022
    for name, argv in writers(*model, tmp_path / "out").items():
        target = tmp_path / name.split()[0].strip("-")
        argv[-1] = target if name != "simulate --save" else target.with_suffix(".npz")
        if name == "report --plot":
            argv[-1] = target.with_suffix(".png")
        assert run_cli(capsys, *argv)[0] == 0, name
        written = Path(argv[-1])
        expected = {files, dirs} if written.is_dir() else {files}
        assert modes(written) == expected, (name, {oct(m) for m in modes(written)})


def test_a_stricter_umask_is_honoured(tmp_path, model) -> None:
    target = tmp_path / "prj"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; os.umask(0o077); "
            "from spatten_hls.compiler.cli.main import main; sys.exit(main(sys.argv[1:]))",
            "compile",
            str(model[0]),
            "--config",
            str(model[1]),
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert modes(target) == {0o600, 0o700}


# -- unwritable, read-only and full targets ------------------------------------------------------


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_refusing_filesystem_is_one_error_and_leaves_nothing(
    capsys, tmp_path, model, monkeypatch, code
) -> None:
    """The filesystem refuses the temporary file or directory (permission, read-only)."""

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    out = tmp_path / "out"
    out.mkdir()
    for index, name in enumerate(writers(*model, out)):
        argv = writers(*model, out / f"target{index}")[name]
        result, _, err = run_cli(capsys, *argv)
        assert result == 1, name
        one_error(err, f"target{index}", os.strerror(code))
        leftovers = [p.name for p in out.rglob("*") if p.is_file()]
        assert leftovers == [], (name, leftovers)


def test_a_full_disk_for_real(tmp_path, model) -> None:
    """RLIMIT_FSIZE makes every write past 64 KiB fail (EFBIG), like a full disk."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    for argv, target in (
        (["ir", "bert-base", "-o", "ir.txt"], "ir.txt"),
        (["compile", "bert-base", "-o", "prj"], "prj"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "spatten_hls.compiler.cli.main", *argv],
            cwd=tmp_path,
            preexec_fn=limit,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        one_error(done.stderr, target, os.strerror(errno.EFBIG))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.toml"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_for_real(capsys, tmp_path, model) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for name, argv in writers(*model, locked / "target").items():
            code, _, err = run_cli(capsys, *argv)
            assert code == 1, name
            one_error(err, "Permission denied")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_file_outputs_refuse_directories(capsys, tmp_path, model) -> None:
    for option in ("-o", "--save", "--plot"):
        command = {"-o": "ir", "--save": "simulate", "--plot": "report"}[option]
        code, _, err = run_cli(capsys, command, model[0], "--config", model[1], option, tmp_path)
        assert code == 1
        one_error(err, "is a directory")


def test_the_umask_is_read_without_changing_it() -> None:
    before = os.umask(0o022)
    os.umask(before)
    outputs.file_mode()
    after = os.umask(0o022)
    os.umask(after)
    assert before == after


FILE_KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from spatten_hls.compiler import outputs

real = outputs.os.replace
def replace(a, b):  # killed with the temporary written, before it is renamed into place
    os.kill(os.getpid(), signal.SIGKILL)
outputs.os.replace = replace
outputs.write_text_atomic(Path(sys.argv[1]), "new")
"""


def test_a_killed_file_write_leaves_the_old_file_and_the_next_run_cleans_up(tmp_path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    done = subprocess.run(
        [sys.executable, "-c", FILE_KILL_SCRIPT, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL
    assert target.read_text() == "old"
    (stale,) = [p for p in tmp_path.iterdir() if p != target]
    assert stale.name.startswith(".out.txt.spatten-") and stale.read_text() == "new"
    outputs.write_text_atomic(target, "newer")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "newer"
