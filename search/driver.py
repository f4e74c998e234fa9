"""``run_search``: a search on the backend its spec names; both return the study in Optuna storage."""
from __future__ import annotations

from typing import Callable

from .candidate import train_and_evaluate
from .spec import SearchSpec, write_spec


def run_search(spec: SearchSpec, evaluate: Callable = train_and_evaluate, progress: bool = True):
    """Run ``spec`` as given (``search.resolve`` applies the rules first: ``search.run`` does); its spec is
    written to ``<root>/<study>/spec.yaml`` first. ``progress``: a line per finished trial."""
    write_spec(spec)
    if spec.backend == "ray":
        from .ray_backend import run_ray

        return run_ray(spec, evaluate, progress)
    from .optuna_backend import run_optuna

    return run_optuna(spec, evaluate, progress)
