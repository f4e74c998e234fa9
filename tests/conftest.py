import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT.parent / "shared" / "anchors"


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
    from asymllic.checkpoint import new_codec, save_codec

    path = tmp_path_factory.mktemp("ckpt") / "teacher.pt"
    save_codec(new_codec(space.teacher_config(64), seed=0), path)
    return path


def run_cli(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a separate process, as a user runs it (``env`` adds to this process's environment)."""
    proc = subprocess.run([sys.executable, "-m", "search.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"asymllic {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def smoke_teacher(tmp_path_factory) -> str:
    """A TCM-small teacher trained for the smoke preset's few steps (real training, seconds)."""
    import space
    from asymllic.training import StageRun, get_train_preset, train_teacher

    root = tmp_path_factory.mktemp("smoke_teacher")
    return str(train_teacher(space.teacher_config(64), get_train_preset("smoke"), 0.0067, None,
                             StageRun(root, root / "cache", progress=False)))
