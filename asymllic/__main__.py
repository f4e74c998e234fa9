"""``python -m asymllic``: the command line."""
import sys

from asymllic.cli import main

sys.exit(main())
