"""What a process imports: CompressAI without torch_geometric and torchvision (asymllic.compressai_import), and
both real packages still importable afterwards in the same process."""
import json
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = r"""
import json, sys, torch
import asymllic.codec.coding  # imports CompressAI
from compressai.entropy_models import EntropyBottleneck
before = sorted(m for m in ("torch_geometric", "torchvision", "torch._dynamo") if m in sys.modules)
eb = EntropyBottleneck(4).eval()
eb.update(force=True)
x = torch.randn(1, 4, 8, 8) * 3
strings = eb.compress(x)
same = bool(torch.equal(eb.decompress(strings, x.shape[-2:]), torch.round(x - eb._get_medians()) + eb._get_medians()))
import torch_geometric.transforms, torchvision.transforms
real = [getattr(m, "__file__", None) for m in (torch_geometric.transforms, torchvision.transforms)]
print(json.dumps({"before": before, "same": same, "real": real, "resize": hasattr(torchvision.transforms, "Resize")}))
"""


def test_compressai_is_imported_without_torch_geometric_and_torchvision():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["before"] == []  # none of the three (torch._dynamo came with torchvision's ops)
    assert result["same"]  # CompressAI's entropy coder works
    assert all(f and "site-packages" in f for f in result["real"]) and result["resize"]  # imported later: the real ones


STATE = r"""
import json, logging, os, sys, warnings
import numpy, pandas  # third-party packages the search imports: what they do on import is theirs


def state():
    loggers = {name: getattr(logger, "level", None) for name, logger in logging.root.manager.loggerDict.items()}
    return {"filters": [repr(f) for f in warnings.filters], "root": logging.root.level, "env": dict(os.environ),
            "loggers": loggers}


before = state()
import asymllic, search
import search.api, search.spec, search.storage, search.optuna_backend, search.confirm, search.export
after = state()
# loggers created by the import are new, not changed: compare those that existed before
after["loggers"] = {k: v for k, v in after["loggers"].items() if k in before["loggers"]}
print(json.dumps({"same": before == after, "before": before, "after": after}, default=str))
"""


def test_importing_the_packages_changes_no_warning_filter_log_level_or_environment():
    out = subprocess.run([sys.executable, "-c", STATE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    for key in ("filters", "root", "env", "loggers"):
        assert result["before"][key] == result["after"][key], key
    assert result["same"]


def test_searching_leaves_optuna_s_log_level_and_warning_filters_as_they_were(tmp_path):
    import warnings

    import optuna

    import torch  # noqa: F401 - what torch does to the filters on import is torch's
    from optuna.exceptions import ExperimentalWarning

    from search.optuna_backend import open_study
    from search.spec import SearchSpec

    optuna.logging.set_verbosity(optuna.logging.INFO)
    filters = list(warnings.filters)
    spec = SearchSpec("levels", root=str(tmp_path), heartbeat=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_study(spec)
        open_study(spec.ref(), create=False)
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    assert warnings.filters == filters
    assert not [w for w in caught if issubclass(w.category, ExperimentalWarning)]  # the study's own, silenced


def test_tune_settings_and_chromium_s_path_are_set_for_their_call_only(monkeypatch):
    from search.plots.io import _browser
    from search.ray_backend import tune_environ

    monkeypatch.delenv("TUNE_GLOBAL_CHECKPOINT_S", raising=False)
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "0")  # the user's: kept
    before = dict(os.environ)
    with tune_environ(TUNE_GLOBAL_CHECKPOINT_S="2"):
        assert os.environ["TUNE_GLOBAL_CHECKPOINT_S"] == "2"
        assert os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] == "0"
    assert dict(os.environ) == before
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: f"/opt/{name}" if name == "chromium" else None)
    before = dict(os.environ)
    with _browser():
        assert os.environ["BROWSER_PATH"] == "/opt/chromium"
    assert dict(os.environ) == before


def test_compressai_of_another_version_is_imported_plainly():
    script = r"""
import json, sys
import asymllic.compressai_import as ci
ci.compressai_version = lambda: "9.9.9"
import compressai
print(json.dumps(sorted(m for m in ("torch_geometric", "torchvision") if m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["torch_geometric", "torchvision"]  # the real ones
    assert "torch.jit.script" not in out.stderr


def test_compressai_version_is_read_from_its_metadata(monkeypatch):
    import importlib.metadata

    import asymllic.compressai_import as ci

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.2.8")
    assert ci.compressai_version() == ci.WRITTEN_FOR

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert ci.compressai_version() is None
