"""A full disk or a read-only results folder: one line that says where, and nothing already done is lost."""
import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import run_cli
from search.optuna_backend import open_study
from search.spec import SearchSpec
from search.table import trials_frame


@pytest.fixture()
def disk():
    """``disk(size_mb, readonly=False)``: a real small filesystem (tmpfs); skipped where mounting is not allowed."""
    mounts = []

    def make(size_mb: int, readonly: bool = False) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="disk"))
        opts = f"size={size_mb}m" + (",ro" if readonly else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True, text=True)
        if proc.returncode:
            folder.rmdir()
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield make
    for folder in mounts:
        subprocess.run(["umount", str(folder)], capture_output=True)
        folder.rmdir()


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("asymllic:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_read_only_results_folder(disk, photo_path, teacher_ckpt, smoke_teacher):
    ro = disk(1, readonly=True)
    line = _one_line_error(run_cli("search", "--study", "s", "--schedule", "smoke", "--trials", "1", "--teacher",
                                   smoke_teacher, "--root", ro, check=False))
    assert f"cannot write {ro}/s: Read-only file system" in line
    line = _one_line_error(run_cli("compress", photo_path, ro / "o.alic", "--model", teacher_ckpt, check=False))
    assert f"cannot write {ro}/o.alic" in line


def test_full_disk_stops_the_search_and_keeps_the_study(disk, tmp_path, smoke_teacher):
    # 110 MiB: room for the first candidate (the paper's g_s at its peak: 58 MB of resume state + a 19 MB
    # checkpoint, then 19 MB kept), not for the second (the teacher's g_s: 81 MB of state, then a 27 MB checkpoint)
    root = disk(110)
    db = tmp_path / "study.db"
    # no MAC budget: the candidate the resumed run draws (from a sampler seed of its own) trains whatever it costs
    args = ["search", "--study", "full", "--schedule", "smoke", "--trials", "2", "--teacher", smoke_teacher,
            "--root", root, "--storage", f"sqlite:///{db}", "--mac-budget", "none"]
    line = _one_line_error(run_cli(*args, check=False))
    assert "No space left on device" in line and str(root) in line and "intact with 1 finished trials" in line
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    df = trials_frame(open_study(SearchSpec(study="full", storage=f"sqlite:///{db}"), create=False))
    assert list(df["state"]) == ["COMPLETE", "FAIL"]
    assert "No space left on device" in df.iloc[1]["error"]
    kept = Path(df.iloc[0]["checkpoint"])
    assert kept.is_file() and not list(root.rglob("*.tmp"))  # no half-written file left behind
    mtime = kept.stat().st_mtime_ns

    subprocess.run(["mount", "-o", "remount,size=1000m", str(root)], check=True)  # space freed
    run_cli(*args)  # the same command resumes
    df = trials_frame(open_study(SearchSpec(study="full", storage=f"sqlite:///{db}"), create=False))
    assert list(df["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert set(df["preset"].dropna()) == {"paper", "teacher"}
    assert kept.stat().st_mtime_ns == mtime  # the finished trial was not redone


def _write_many(args) -> int:
    from asymllic.files import write_bytes

    path, payload = args
    for _ in range(200):
        write_bytes(payload, path)
    return 0


def test_two_processes_writing_one_file_never_collide(tmp_path):
    """Workers of one study share the latent cache: both may write the same file at once."""
    import multiprocessing as mp

    target = tmp_path / "shared.pt"
    payloads = [b"a" * 100_000, b"b" * 100_000]
    with mp.get_context("fork").Pool(2) as pool:
        assert pool.map(_write_many, [(target, p) for p in payloads]) == [0, 0]
    assert target.read_bytes() in payloads  # whole, from one writer
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert [p.name for p in tmp_path.iterdir()] == ["shared.pt"]  # no temporary left behind


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
