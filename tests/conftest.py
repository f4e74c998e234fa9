import importlib.util
import io
import os

if os.environ.get("PYTEST_XDIST_WORKER"):  # several test processes on the machine's cores: one thread each (and children)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
import subprocess
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from space.anchors import anchors_dir

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = anchors_dir()


def script_module(path: str):
    """A script of the checkout (``bench/...``, ``scripts/...``) as a module: its functions, to test or to serve as
    references."""
    spec = importlib.util.spec_from_file_location(path.replace("/", "_").removesuffix(".py"), ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def photo(name: str = "astronaut", size=(200, 136)) -> np.ndarray:
    """A real photo from scikit-image's bundled data, cropped to (width, height)."""
    import skimage.data

    arr = getattr(skimage.data, name)()
    w, h = size
    return np.ascontiguousarray(arr[:h, :w, :3])


@pytest.fixture(scope="session")
def photo_path(tmp_path_factory) -> Path:
    # 200x136 is not a multiple of 64: exercises pad and crop
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(photo()).save(path)
    return path


@pytest.fixture(scope="session")
def teacher_ckpt(tmp_path_factory) -> Path:
    import space
    from asymllic.codec.checkpoint import new_codec, save_codec

    path = tmp_path_factory.mktemp("ckpt") / "teacher.pt"
    save_codec(new_codec(space.teacher_config(64), seed=0), path)
    return path


@contextmanager
def _environ(extra: dict | None):
    saved = {k: os.environ.get(k) for k in (extra or {})}
    os.environ.update({k: str(v) for k, v in (extra or {}).items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(*args, check: bool = True, env: dict | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """``asymllic ARGS`` as a user runs it: ``main(argv)`` in this process with its output captured, or
    (``process=True``) a process of its own, where a process must die or a second one must decode."""
    argv = [str(a) for a in args]
    if process:
        proc = subprocess.run([sys.executable, "-m", "asymllic", *argv], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, **(env or {})})
    else:
        from asymllic_cli import main

        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err), _environ(env):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 2
        proc = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"asymllic {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def smoke_teacher(tmp_path_factory) -> str:
    """A TCM-small teacher trained for the smoke schedule's few steps (real training, seconds), on ``cuda`` as the
    strict CUDA stand-in shows it (its calls in ``STANDIN_TEACHER_CALLS``; the tensors on the CPU, in fp32: CUDA's
    bf16 autocast is off where there is no GPU). The settings training makes for a GPU are undone afterwards."""
    import cuda_standin
    import torch

    import space
    from asymllic.training import StageRun, get_schedule, train_teacher

    root = tmp_path_factory.mktemp("smoke_teacher")
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    flags = (cudnn.benchmark, matmul.allow_tf32, cudnn.allow_tf32)
    with pytest.MonkeyPatch.context() as mp:
        cuda = cuda_standin.install(2, setattr_=mp.setattr)
        try:
            path = train_teacher(space.teacher_config(64), get_schedule("smoke"), 0.0067, None,
                                 StageRun(root, root / "cache", progress=False, device="cuda"))
        finally:
            cudnn.benchmark, matmul.allow_tf32, cudnn.allow_tf32 = flags
    STANDIN_TEACHER_CALLS[:] = cuda.log
    return str(path)


STANDIN_TEACHER_CALLS: list = []  # the CUDA calls of the session's smoke teacher, through the stand-in


@pytest.fixture
def ray_stopped_after():
    """The Ray a test starts is stopped when it ends: a Ray left running in a test process would take the next Ray
    test's place (its cluster address ignored) and keep its workers busy."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every Ray run in one test process (``--dist loadgroup``): two Ray runtimes at once on two cores slow each
    other several times over."""
    for item in items:
        if item.module.__name__ == "test_ray" or "[ray]" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture
def strict_cuda(monkeypatch):
    """This process sees two GPUs through the strict ``torch.cuda`` stand-in (tests/cuda_standin.py): every CUDA
    call of the product is checked against torch's preconditions; tensors meant for a GPU run on the CPU."""
    import cuda_standin

    return cuda_standin.install(2, setattr_=monkeypatch.setattr)


@pytest.fixture
def strict_cuda_children(monkeypatch, tmp_path):
    """Child processes (spawned search workers, Ray's workers) started from here see two GPUs through the
    stand-in too; returns the file every process logs its CUDA calls to (``cuda_standin.read_log``)."""
    import cuda_standin

    log = tmp_path / "cuda_calls.jsonl"
    site = Path(__file__).resolve().parent / "cuda_standin_site"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(cuda_standin.ENV, "2")
    monkeypatch.setenv(cuda_standin.LOG_ENV, str(log))
    return log
