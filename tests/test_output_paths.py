"""The one output-path check and the atomic write behind every file coreset
writes (select, dedup, embed, compare's --out files, stream checkpoints,
Selection.save): device nodes, FIFOs and folders are refused, never replaced;
names over NAME_MAX / PATH_MAX are one ``Error:`` line; a full disk is one
``Error:`` line with nothing left; a writer killed mid-write leaves nothing
(Linux O_TMPFILE); --checkpoint may not be --output. Real files, real device
nodes (made with mknod in tmp_path, never /dev/null itself), real signals."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import coreset
import coreset._atomic as atomic
from coreset import Selection
from coreset._io import atomic_write, save_selection
from coreset.selection import load_selection
from coreset.cli import app
from coreset.exceptions import OutputPathError, OutputWriteError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file types and signals")


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture
def npy(tmp_path):
    X = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    return tmp_path / "x.npy"


def run(runner, *args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(res, *fragments, code=1):
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert "Traceback" not in res.output and res.stdout == ""
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


def _sel():
    return Selection([3, 1], [2.0, 1.0], [0.5, 0.25], objective=0.75, labels=np.array([1, 0]))


def _null_device(path: Path) -> Path:
    """A character device with /dev/null's numbers (1, 3), made here; skips where mknod is not allowed."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


def _is_null_device(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)


# ------------------------------------------------ 1. targets that are not regular files


def _writers(npy: Path, out: Path) -> dict:
    return {
        "select": ["select", npy, "--n-select", 5, "-o", out],
        "dedup": ["dedup", npy, "-o", out],
        "embed": ["embed", npy, "-b", "minilm", "-o", out],
    }


@posix_only
@pytest.mark.parametrize("command", ["select", "dedup", "embed"])
def test_a_device_node_as_output_is_refused_and_kept(runner, tmp_path, npy, command):
    dev = _null_device(tmp_path / "null.npy")
    line = one_error_line(run(runner, *_writers(npy, dev)[command]), "--output", "null.npy", "a character device")
    assert ".tmp" not in line
    assert _is_null_device(dev)  # still the device, not a regular file swapped in by a rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.npy", "x.npy"]


@posix_only
def test_fifo_folder_and_links_to_them_are_refused(runner, tmp_path, npy):
    os.mkfifo(tmp_path / "pipe.npz")
    (tmp_path / "dir.npz").mkdir()
    dev = _null_device(tmp_path / "dev")
    (tmp_path / "to_dev.npz").symlink_to(dev)
    (tmp_path / "loop.npz").symlink_to(tmp_path / "loop.npz")
    cases = {"pipe.npz": "a FIFO", "dir.npz": "a folder", "to_dev.npz": "a symbolic link to",
             "loop.npz": "symbolic link"}
    for name, what in cases.items():
        one_error_line(run(runner, "select", npy, "--n-select", 5, "-o", tmp_path / name), "--output", name, what)
    assert "which is a character device" in one_error_line(
        run(runner, "select", npy, "--n-select", 5, "-o", tmp_path / "to_dev.npz"))
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe.npz").st_mode) and _is_null_device(dev)
    assert os.readlink(tmp_path / "to_dev.npz") == str(dev)
    # the library: the same check, naming its parameter
    with pytest.raises(OutputPathError, match=r"cannot write path .*pipe\.npz.*a FIFO"):
        save_selection(_sel(), tmp_path / "pipe.npz")
    with pytest.raises(OutputPathError, match="a character device"):
        _sel().save(dev, format="npz")
    assert _is_null_device(dev)


@posix_only
def test_a_symlink_to_a_regular_file_is_written_through(runner, tmp_path, npy):
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "sel.npz"
    save_selection(_sel(), real)
    link = tmp_path / "latest.npz"
    link.symlink_to(Path("runs") / "sel.npz")  # relative, as users write them
    res = run(runner, "select", npy, "--n-select", 5, "-o", link)
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and os.readlink(link) == str(Path("runs") / "sel.npz")
    assert len(load_selection(real)) == 5  # the target got the new selection
    dangling = tmp_path / "new.npz"
    dangling.symlink_to(tmp_path / "runs" / "created.npz")
    save_selection(_sel(), dangling)  # a dangling link: its target is created, as open() would
    assert dangling.is_symlink() and load_selection(tmp_path / "runs" / "created.npz").equals(_sel())
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["created.npz", "sel.npz"]


# ------------------------------------------------ 2. a write that fails: one Error line, nothing left


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs: a real 'No space left on device' (needs root; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@posix_only
def test_a_full_disk_is_one_error_line_and_leaves_the_old_file(runner, small_tmpfs, npy):
    out = small_tmpfs / "out.npz"
    save_selection(_sel(), out)
    before = out.read_bytes()
    _fill(small_tmpfs)
    for argv in (["select", npy, "--n-select", 5, "-o", out], ["dedup", npy, "-o", out]):
        one_error_line(run(runner, *argv), "--output", "out.npz", "No space left on device")
        assert out.read_bytes() == before
        assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler", "out.npz"]
    with pytest.raises(OutputWriteError, match="cannot write path .*No space left") as exc:
        save_selection(Selection(np.arange(5000), np.ones(5000), np.zeros(5000)), small_tmpfs / "big.npz")
    assert exc.value.errno == errno.ENOSPC and isinstance(exc.value, OSError)
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler", "out.npz"]


@contextmanager
def _file_size_limit(n_bytes: int):
    """RLIMIT_FSIZE for this process: the kernel refuses bytes past ``n_bytes``
    of any regular file (EFBIG, SIGXFSZ ignored meanwhile); restored after."""
    resource = pytest.importorskip("resource")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


@posix_only
@pytest.mark.parametrize("use_o_tmpfile", [True, False])
def test_a_write_failing_midway_leaves_nothing(runner, tmp_path, npy, use_o_tmpfile, monkeypatch):
    """A real write failure midway (the kernel refuses bytes past 1 KiB), on any
    file system: exit 1, one Error line naming --output and the file, no file
    and no temporary left, an existing output kept."""
    monkeypatch.setattr(atomic, "USE_O_TMPFILE", use_o_tmpfile)
    out = tmp_path / "out.npz"
    with _file_size_limit(1024):
        res = run(runner, "select", npy, "--n-select", 5, "-o", out)
    line = one_error_line(res, "cannot write --output", "out.npz", "File too large")
    assert "/proc/self" not in line and ".tmp" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
    (tmp_path / "out.npz").write_bytes(b"old")
    with _file_size_limit(1024):
        one_error_line(run(runner, "dedup", npy, "-o", out), "cannot write --output", "File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "x.npy"] and out.read_bytes() == b"old"


# ------------------------------------------------ 3. names over NAME_MAX / PATH_MAX


@pytest.mark.parametrize("command", ["select", "dedup", "embed"])
def test_names_over_the_limits_are_one_error_line(runner, tmp_path, npy, command):
    long_name = tmp_path / ("a" * 252 + ".npy")  # 256 bytes
    one_error_line(run(runner, *_writers(npy, long_name)[command]), "--output", "256 bytes", "NAME_MAX")
    long_path = tmp_path / "/".join(["d" * 200] * 21) / "o.npy"  # over 4096 bytes
    one_error_line(run(runner, *_writers(npy, long_path)[command]), "--output", "PATH_MAX")
    long_folder = tmp_path / ("d" * 300) / "o.npy"
    one_error_line(run(runner, *_writers(npy, long_folder)[command]), "--output", "File name too long")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_embed_leaves_room_for_its_partial_folder(runner, tmp_path, npy):
    out = tmp_path / ("e" * 244 + ".npy")  # 248 bytes: fine alone, not with '.partial' beside it
    one_error_line(run(runner, "embed", npy, "-o", out), "--output", "+8 for the files", "NAME_MAX")


@pytest.mark.parametrize("use_o_tmpfile", [True, False])
def test_a_name_of_exactly_name_max_bytes_is_written(tmp_path, use_o_tmpfile, monkeypatch):
    """Temporaries of a long name use a hashed stem, so the longest legal name works in both schemes."""
    monkeypatch.setattr(atomic, "USE_O_TMPFILE", use_o_tmpfile)
    path = tmp_path / ("é" * 125 + "x.npz")  # 255 bytes in UTF-8
    assert len(os.fsencode(path.name)) == 255
    save_selection(_sel(), path)
    save_selection(_sel(), path)  # a second write replaces it (and its stale-temp scan matches the stem)
    assert load_selection(path).equals(_sel())
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(OutputPathError, match=r"256 bytes long; the file system allows at most 255 \(NAME_MAX\)"):
        save_selection(_sel(), tmp_path / ("b" * 252 + ".npz"))


def test_bad_path_values_name_the_parameter(tmp_path):
    with pytest.raises(OutputPathError, match="cannot write path '': the path is empty"):
        save_selection(_sel(), "", format="npz")
    with pytest.raises(OutputPathError, match="NUL character"):
        save_selection(_sel(), str(tmp_path / "a\0b.npz"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="folder .*file' is a file, not a folder"):
        save_selection(_sel(), tmp_path / "file" / "s.npz")


# ------------------------------------------------ 4. a writer killed mid-write leaves nothing

_WRITER = """
import sys, time
import coreset._atomic
from coreset._io import atomic_write
coreset._atomic.USE_O_TMPFILE = sys.argv[2] == "1"
with atomic_write(sys.argv[1]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"\\0" * 4_000_000)
        fh.flush()
        print("writing", flush=True)
        time.sleep(120)
"""


def _kill_mid_write(path: Path, use_o_tmpfile: bool) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "1" if use_o_tmpfile else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "writing", proc.stderr.read() if proc.poll() is not None else line
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@posix_only
@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="Linux O_TMPFILE")
def test_a_writer_killed_mid_write_leaves_nothing(tmp_path):
    path = tmp_path / "sel.npz"
    _kill_mid_write(path, use_o_tmpfile=True)
    assert list(tmp_path.iterdir()) == []
    save_selection(_sel(), tmp_path / "keep.npz")
    before = (tmp_path / "keep.npz").read_bytes()
    _kill_mid_write(tmp_path / "keep.npz", use_o_tmpfile=True)  # an existing file is kept as it was
    assert [p.name for p in tmp_path.iterdir()] == ["keep.npz"] and (tmp_path / "keep.npz").read_bytes() == before


@posix_only
def test_the_fallback_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    path = tmp_path / "sel.npz"
    _kill_mid_write(path, use_o_tmpfile=False)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".sel.npz.") and left[0].endswith(".tmp")
    save_selection(_sel(), path)
    assert [p.name for p in tmp_path.iterdir()] == ["sel.npz"]


@pytest.mark.parametrize("use_o_tmpfile", [True, False])
def test_every_writer_of_the_library_writes_through_the_yielded_path(tmp_path, use_o_tmpfile, monkeypatch):
    """The callers' ways of writing (open, write_text, pyarrow, matplotlib) work on the yielded path."""
    monkeypatch.setattr(atomic, "USE_O_TMPFILE", use_o_tmpfile)
    for suffix in (".npz", ".parquet", ".npy", ".txt"):
        save_selection(_sel(), tmp_path / f"s{suffix}")
        assert np.array_equal(load_selection(tmp_path / f"s{suffix}").indices, [3, 1])
    with atomic_write(tmp_path / "t.json") as tmp:
        Path(tmp).write_text('{"a": 1}')
    assert (tmp_path / "t.json").read_text() == '{"a": 1}'
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "t.json") as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("the writer failed")
    assert (tmp_path / "t.json").read_text() == '{"a": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy", "s.npz", "s.parquet", "s.txt", "t.json"]


# ------------------------------------------------ 5. --checkpoint and --output: one file


def _stream(npy, out, ckpt):
    return ["select", npy, "--stream", "--n-select", 5, "--chunk-size", 20, "--checkpoint", ckpt, "-o", out]


def test_checkpoint_equal_to_output_is_a_usage_error(runner, tmp_path, npy, monkeypatch):
    out = tmp_path / "out.npz"
    res = run(runner, *_stream(npy, out, out))
    assert res.exit_code == 2 and "overwrite --checkpoint" in res.stderr, res.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    res = run(runner, *_stream(npy, "out.npz", "sub/../out.npz"))  # the same path, spelled otherwise
    assert res.exit_code == 2 and "overwrite --checkpoint" in res.stderr, res.output
    (tmp_path / "ck.npz").symlink_to(out)
    res = run(runner, *_stream(npy, out, tmp_path / "ck.npz"))  # through a (dangling) symbolic link
    assert res.exit_code == 2 and "overwrite --checkpoint" in res.stderr, res.output
    save_selection(_sel(), out)
    os.link(out, tmp_path / "hard.npz")
    res = run(runner, *_stream(npy, out, tmp_path / "hard.npz"))  # a hard link: one inode
    assert res.exit_code == 2 and "overwrite --checkpoint" in res.stderr, res.output
    res = run(runner, *_stream(npy, tmp_path / "o2.npz", npy))  # the checkpoint may not be INPUT either
    assert res.exit_code == 2 and "overwrite INPUT" in res.stderr, res.output
    assert load_selection(out).equals(_sel())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "hard.npz", "out.npz", "sub", "x.npy"]
    res = run(runner, *_stream(npy, tmp_path / "o3.npz", tmp_path / "ck2.npz"))  # distinct files: fine
    assert res.exit_code == 0, res.output
    assert len(load_selection(tmp_path / "o3.npz")) == 5


@posix_only
def test_a_bad_checkpoint_path_is_refused_before_the_stream(runner, tmp_path, npy):
    dev = _null_device(tmp_path / "ck.npz")
    one_error_line(run(runner, *_stream(npy, tmp_path / "o.npz", dev)), "--checkpoint", "a character device")
    with pytest.raises(OutputPathError, match="cannot write checkpoint .*a character device"):
        coreset.select_stream(npy, 5, chunk_size=20, checkpoint=dev)
    with pytest.raises(OutputPathError, match="cannot write checkpoint .*folder .*does not exist"):
        coreset.select_stream(npy, 5, chunk_size=20, checkpoint=tmp_path / "no" / "ck.npz")
    with pytest.raises(OutputPathError, match="the input file itself"):
        coreset.select_stream(npy, 5, chunk_size=20, checkpoint=npy)
    assert _is_null_device(dev) and sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "x.npy"]


# ------------------------------------------------ a missing folder; compare's --out files


@pytest.mark.parametrize("command", ["select", "dedup", "embed"])
def test_a_missing_folder_names_output(runner, tmp_path, npy, command):
    out = tmp_path / "no" / "out.npy"
    one_error_line(run(runner, *_writers(npy, out)[command]), "--output", "folder", "does not exist")
    assert not (tmp_path / "no").exists()


@posix_only
def test_compare_refuses_a_device_among_its_out_files_up_front(runner, tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    dev = _null_device(out / "results.csv")
    res = run(runner, "compare", "--dataset", "zipf", "--out", out, "--no-plots")
    one_error_line(res, "--out", "results.csv", "a character device")
    assert _is_null_device(dev) and [p.name for p in out.iterdir()] == ["results.csv"]
