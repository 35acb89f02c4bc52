"""`python -m gan_tf ...` runs the command line (see gan_tf/cli.py)."""

import sys

from .cli import main

sys.exit(main())
