"""Output files: atomic writes, clear errors for bad targets, nothing partial left behind.

A write goes to `.NAME.XXXX.part` in the target's folder and is renamed over the
target; these tests break it at each step (mid-write, at fsync, at the rename, by
Ctrl-C) and require the old file intact and no `.part` file.  Being root, the tests
make a folder unwritable by monkeypatching os.access or by pointing into /proc and
/sys, where even root cannot create files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import derive.cli
import derive.files as files
from derive.cli import main
from derive.errors import RenderError
from derive.files import ensure_folder, write_bytes_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
OLD = "old contents\n"


def _parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@pytest.fixture
def target(tmp_path) -> Path:
    path = tmp_path / "out.txt"
    path.write_text(OLD)
    return path


def test_write_text_atomic_replaces_whole_file(target):
    assert write_text_atomic(target, "new\n") == target
    assert target.read_text() == "new\n"
    assert _parts(target.parent) == []
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_text_atomic_creates_missing_folders(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"
    write_text_atomic(path, "x")
    assert path.read_text() == "x"


def test_write_interrupted_mid_write_keeps_old_file(target, monkeypatch):
    real_fdopen = os.fdopen

    class Half:
        """A file object that writes half the data, then is interrupted."""

        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Half(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "new contents that never fully arrive\n")
    assert target.read_text() == OLD
    assert _parts(target.parent) == []


def test_write_interrupted_at_fsync_keeps_old_file(target, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "new\n")
    assert target.read_text() == OLD and _parts(target.parent) == []


def test_write_disk_full_is_render_error(target, monkeypatch):
    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RenderError, match=r"^cannot write '.*out.txt': No space left on device$"):
        write_text_atomic(target, "new\n")
    assert target.read_text() == OLD and _parts(target.parent) == []


def test_write_failed_rename_is_render_error(target, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(RenderError, match=r"^cannot write '.*out.txt': Permission denied$"):
        write_text_atomic(target, "new\n")
    assert target.read_text() == OLD and _parts(target.parent) == []


def test_write_target_is_a_folder(tmp_path):
    with pytest.raises(RenderError, match=r"^output '.*' is a folder, not a file$"):
        write_text_atomic(tmp_path, "x")


def test_write_target_under_a_file(target):
    with pytest.raises(RenderError, match=r"^output '.*out.txt' is a file, not a folder$"):
        write_text_atomic(target / "inner.txt", "x")
    assert target.read_text() == OLD


def test_write_target_two_levels_under_a_file(target):
    with pytest.raises(RenderError, match=r"^output folder '.*out.txt/sub' cannot be created: "
                                          r"Not a directory$"):
        write_text_atomic(target / "sub" / "inner.txt", "x")


def test_write_unwritable_folder_by_access(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(RenderError, match=r"^output folder '.*' is not writable$"):
        write_text_atomic(tmp_path / "out.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_write_unwritable_folder_in_sys():
    # root passes os.access, but sysfs refuses new files: the mkstemp failure is caught
    with pytest.raises(RenderError, match=r"^cannot write '/sys/derive-test.txt': "):
        write_text_atomic("/sys/derive-test.txt", "x")


def test_write_folder_that_cannot_be_created_in_proc():
    with pytest.raises(RenderError, match=r"^output folder '/proc/derive-test' cannot be created: "):
        write_text_atomic("/proc/derive-test/out.txt", "x")


def test_write_path_with_nul_byte():
    with pytest.raises(RenderError, match=r"^output must be a path \(without NUL bytes\), got 'a\\x00b'$"):
        write_text_atomic("a\x00b", "x")


def test_ensure_folder_is_a_file(target):
    with pytest.raises(RenderError, match=r"^output '.*out.txt' is a file, not a folder$"):
        ensure_folder(target)


def test_concurrent_writers_end_with_one_whole_file(tmp_path):
    # two processes each rewrite the same file 40 times with 1 MB of their own byte;
    # a reader in this process must only ever see one writer's whole file
    path = tmp_path / "shared.bin"
    path.write_bytes(b"0" * 2**20)
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from derive.files import write_bytes_atomic\n"
              "for _ in range(40): write_bytes_atomic(sys.argv[1], sys.argv[2].encode() * 2**20)\n"
              % str(ROOT))
    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), byte]) for byte in "ab"]
    seen, torn = set(), []
    while any(w.poll() is None for w in writers):
        data = path.read_bytes()
        if len(data) != 2**20 or len(set(data)) != 1:
            torn.append(len(data))
        seen.add(data[:1])
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    final = path.read_bytes()
    assert torn == [] and len(final) == 2**20 and set(final) in ({ord("a")}, {ord("b")})
    assert _parts(tmp_path) == []


def test_concurrent_threads_write_distinct_files_in_one_folder(tmp_path):
    def write(i):
        for _ in range(20):
            write_text_atomic(tmp_path / f"f{i}.txt", f"{i}\n" * 1000)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}.txt" for i in range(8)]
    assert all((tmp_path / f"f{i}.txt").read_text() == f"{i}\n" * 1000 for i in range(8))


# -- through the command line ---------------------------------------------------------

def test_cli_code_interrupted_while_writing_keeps_old_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "grad.py"
    out.write_text(OLD)

    def interrupted(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupted)
    assert main(["code", "--layers", "2,1", "-o", str(out)]) == 130
    assert capsys.readouterr() == ("", "derive: interrupted\n")
    assert out.read_text() == OLD and _parts(tmp_path) == []


def test_cli_code_writes_through_files(tmp_path, monkeypatch, capsys):
    calls = []
    real = files.write_bytes_atomic
    monkeypatch.setattr(files, "write_bytes_atomic", lambda p, d: calls.append(p) or real(p, d))
    out = tmp_path / "grad.py"
    assert main(["code", "--layers", "2,1", "-o", str(out)]) == 0
    assert calls == [out] and out.read_text().strip()
    assert capsys.readouterr().out == f"{out}\n"


def test_cli_output_unwritable_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["code", "--layers", "2,1", "-o", str(tmp_path / "grad.py")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"derive: output folder '{tmp_path}' is not writable\n"


def test_cli_sigint_exits_130_without_traceback(tmp_path):
    # a slow command (a 33-layer width-16 check at 400 points) interrupted after it started
    layers = ",".join(["16"] * 33)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "derive.cli", "check", "--layers", layers,
                             "--points", "400"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    assert proc.poll() is None, "the command finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err, out) == (130, "derive: interrupted\n", "")
    assert list(tmp_path.iterdir()) == []
