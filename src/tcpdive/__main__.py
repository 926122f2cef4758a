"""``python3 -m tcpdive``: the same as the ``tcpdive`` command."""

import sys

from .cli import main

sys.exit(main())
