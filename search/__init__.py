"""Search side: Optuna / Ray Tune drivers, study storage, result tables, plots and export (a library; the
``asymllic`` command, package ``asymllic_cli``, calls it).

The public API (see ``docs/python-api.md``)::

    spec = search.define("demo", schedule="cpu", trials=6)   # resolved: every rule of `asymllic search`
    study = search.run(spec)                                 # or search.run("results/demo/spec.yaml")
    study = search.open("demo"); study.trials(); study.front()
    search.export_codecs(study, top=3)   # (``search.export`` is the module that picks and writes them)
    study.figures()                      # Pareto plot, hypervolume history, axis importance (as `asymllic pareto`)
    search.factorize("sy", "hy", measure=2)   # a synthesis and a hyperprior study's fronts combined
    board = search.serve_dashboard("demo"); board.url; board.stop()   # Optuna Dashboard over the study
    search.reproduce("table1")   # the paper's Tables I-III and Fig. 1 beside the published figures

Importing ``search`` imports no torch, Optuna or Ray: each is imported where it is used.
"""
from .api import Study, define, export_codecs, factorize, load, open, resolve, run  # noqa: A004 - search.open reads as meant
from .dashboard import serve_dashboard
from .reproduce import reproduce  # the function (module: search/reproduce.py)
from .spec import SearchSpec, StudyRef

__all__ = ["SearchSpec", "Study", "StudyRef", "define", "export_codecs", "factorize", "load", "open", "resolve", "run",
           "reproduce", "serve_dashboard"]


def __dir__() -> list:  # the public names first of all, whatever submodules were imported since
    return sorted(set(globals()) | set(__all__))
