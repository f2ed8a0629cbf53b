"""`python -m red_core.train ...` is `python -m red_core train ...`."""

import sys

from red_core.train.cli import main

sys.exit(main())
