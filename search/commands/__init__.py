"""One module per command group; each has ``add_parsers(subparsers)`` and sets ``run`` on its parsers."""
