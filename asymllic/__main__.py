"""``python -m asymllic``: runs the command line, the top layer ``asymllic_cli``, as a program (as ``python -m
asymllic_cli`` would). It imports nothing of that layer: ``asymllic`` depends only on the layers below it."""
import runpy

runpy.run_module("asymllic_cli", run_name="__main__", alter_sys=True)
