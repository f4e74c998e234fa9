"""``python -m asymllic``: the command line. An entry script, not a module of the library: nothing imports it,
so it may start the top layer (``asymllic_cli``) without ``asymllic`` depending on it."""
import sys

from asymllic_cli import main

sys.exit(main())
