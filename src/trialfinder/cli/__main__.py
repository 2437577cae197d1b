"""``python -m trialfinder.cli``."""

import sys

from trialfinder.cli import main

sys.exit(main())
