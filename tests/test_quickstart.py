"""The README's quickstart, run as written: its one ```bash block after "## Quickstart", in a fresh folder, with
the ``asymllic`` command and ``python`` of the environment running the tests first on the PATH; then every file
the block says it writes exists."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT


def quickstart_block(readme: Path = ROOT / "README.md") -> str:
    """The fenced bash block that follows the heading "## Quickstart" (before the next heading)."""
    text = readme.read_text()
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Quickstart' section"
    blocks = re.findall(r"^```bash\n(.*?)^```", section.group(1), re.S | re.M)
    assert len(blocks) == 1, f"the quickstart section needs exactly one ```bash block, found {len(blocks)}"
    return blocks[0]


def test_quickstart_block_names_what_the_test_checks():
    block = quickstart_block()
    assert "--schedule smoke" in block
    for path in ("results/teacher/smoke-0.0067/codec.pt", "results/quick/pareto.html", "results/quick/export/",
                 "results/quick/photo.alic", "results/quick/photo.png", "results/quick/eval.json"):
        assert path in block, path


@pytest.mark.xdist_group("quickstart")
def test_quickstart_runs_as_written(tmp_path):
    bin_dir = Path(sys.executable).parent  # the environment's python and its `asymllic` console script
    assert (bin_dir / "asymllic").exists(), f"no asymllic command in {bin_dir}: run `make setup` (pip install -e .)"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # as a user's shell: the installed package, not the test's import path
    start = time.monotonic()
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", quickstart_block()], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - start
    print(f"quickstart: {seconds:.0f} s")
    assert proc.returncode == 0, f"quickstart failed after {seconds:.0f} s:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    results = tmp_path / "results"
    assert (results / "teacher" / "smoke-0.0067" / "codec.pt").is_file()
    quick = results / "quick"
    assert (quick / "study.db").is_file() and any((quick / "trials").iterdir())
    assert "config_id" in (quick / "trials.csv").read_text()
    for figure in ("pareto.html", "history.html", "importance.html"):
        assert (quick / figure).is_file(), figure
    exports = list((quick / "export").iterdir())
    assert len(exports) == 1, exports
    for name in ("config.json", "codec.pt", "card.md"):
        assert (exports[0] / name).is_file(), name
    assert (quick / "photo.alic").read_bytes()[:4] == b"ALIC"
    with Image.open(quick / "photo.png") as decoded, Image.open(tmp_path / "photo.png") as original:
        assert decoded.size == original.size == (451, 300)
    assert '"bpp"' in (quick / "eval.json").read_text()
