"""Search side: Optuna / Ray Tune drivers, result tables, plots, export and the ``asymllic`` CLI."""
