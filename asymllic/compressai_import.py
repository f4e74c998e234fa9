"""CompressAI without PyTorch Geometric and torchvision: seconds off every process that codes, trains or counts.

CompressAI 1.2.8 imports, with the package, its point-cloud datasets and transforms (and with them
``torch_geometric``) and a registry of every ``torchvision.transforms`` class (and with it ``torchvision``, whose
``ops`` import ``torch._dynamo``): about 4 s of a 4.7 s ``import compressai`` here, paid by every command,
search worker and Ray worker, for code this project never runs. ``install()`` (run by ``import asymllic``) makes
the first ``import compressai`` of the process see small stand-ins for the names it reads at import time from
those two packages; the stand-ins are removed from ``sys.modules`` as soon as CompressAI is imported, so a later
``import torch_geometric`` or ``import torchvision`` loads the real package. A package imported before
CompressAI is used as it is. Left out in a process where a stand-in was used: CompressAI's point-cloud
transforms, and torchvision's classes in CompressAI's transform registry.

The stand-ins are written against CompressAI 1.2.8 (:data:`WRITTEN_FOR`): another installed version (or none
known to ``importlib.metadata``) is imported plainly, with its real dependencies. Either way the warning torch
gives for CompressAI's ``torch.jit.script`` helpers is silenced for that import only: ``import asymllic`` changes
no warning filter of the process.
"""
from __future__ import annotations

import importlib.abc
import importlib.metadata
import importlib.util
import sys
import types
import warnings
from contextlib import contextmanager

WRITTEN_FOR = "1.2.8"  # the CompressAI whose imports the stand-ins below stand for

# package -> the modules of it CompressAI imports when it is imported
_STAND_INS = {"torch_geometric": ("torch_geometric", "torch_geometric.data", "torch_geometric.data.datapipes",
                                  "torch_geometric.transforms"),
              "torchvision": ("torchvision", "torchvision.transforms")}


class _PointCloudOnly:
    """Stands for a torch_geometric class that only CompressAI's point-cloud code uses."""

    def __init__(self, *args, **kwargs):
        raise ImportError("CompressAI's point-cloud code needs torch_geometric, which asymllic kept out of this "
                          "process; import torch_geometric before asymllic to use it")


def _stand_ins(package: str) -> dict:
    modules = {name: types.ModuleType(name, "asymllic's stand-in, present only while CompressAI is imported")
               for name in _STAND_INS[package]}
    for name, module in modules.items():  # each a package of the next, as the import system expects
        module.__path__ = []
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    if package == "torch_geometric":
        modules["torch_geometric.data"].Data = type("Data", (_PointCloudOnly,), {})
        modules["torch_geometric.data.datapipes"].functional_transform = lambda name: (lambda cls: cls)
        modules["torch_geometric.transforms"].BaseTransform = type("BaseTransform", (_PointCloudOnly,), {})
        modules["torch_geometric.transforms"].Center = type("Center", (_PointCloudOnly,), {})
    return modules


@contextmanager
def stand_ins():
    """While this block runs, importing ``torch_geometric`` or ``torchvision`` (and the submodules CompressAI
    reads) gives a stand-in, unless the real package is imported already."""
    modules = {}
    for package in _STAND_INS:
        if package not in sys.modules:
            modules.update(_stand_ins(package))
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in modules.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


class _FirstCompressaiImport(importlib.abc.MetaPathFinder):
    """Finds CompressAI once, with its ``__init__`` run inside ``stand_ins``."""

    def find_spec(self, name, path=None, target=None):
        if name != "compressai":
            return None
        uninstall()
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        fits = compressai_version() == WRITTEN_FOR

        def exec_module(module):
            with warnings.catch_warnings():
                # torch >= 2.10 flags CompressAI's torch.jit.script helpers as deprecated when they are defined
                warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
                if fits:
                    with stand_ins():
                        run(module)
                else:  # another CompressAI: its own imports, whatever they are
                    run(module)

        loader.exec_module = exec_module
        return spec


def compressai_version() -> str | None:
    """The installed CompressAI's version, None if ``importlib.metadata`` knows none."""
    try:
        return importlib.metadata.version("compressai")
    except importlib.metadata.PackageNotFoundError:
        return None


_FINDER = _FirstCompressaiImport()


def install() -> None:
    if "compressai" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
