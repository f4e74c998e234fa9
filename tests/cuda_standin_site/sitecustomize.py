"""The strict torch.cuda stand-in in every Python process started with this folder on PYTHONPATH and
``ASYMLLIC_STRICT_CUDA`` set to the device count (spawned search workers, a search driver, Ray's workers): put in
place when the product's ``asymllic.cuda`` is first imported, so processes that never import it (Ray's own
agents) do not import torch for it."""
import os
import sys

if os.environ.get("ASYMLLIC_STRICT_CUDA"):
    import importlib.abc
    import importlib.util

    class _InstallAfterImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "asymllic.cuda":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/
                import cuda_standin

                cuda_standin.install(int(os.environ["ASYMLLIC_STRICT_CUDA"]), os.environ.get(cuda_standin.LOG_ENV))

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _InstallAfterImport())
