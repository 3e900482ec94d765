"""``python -m kleidiref``: the same command line as the ``kleidiref`` script."""

import sys

from .cli import main

sys.exit(main())
