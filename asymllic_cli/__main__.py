"""``python -m asymllic_cli``: the command line (an entry script: nothing imports it)."""
import sys

from asymllic_cli import main

sys.exit(main())
