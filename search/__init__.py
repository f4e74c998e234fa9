"""Search side: Optuna / Ray Tune drivers, study storage, result tables, plots and export (a library; the
``asymllic`` command in ``asymllic.cli`` calls it)."""
