"""``python -m trialfinder``."""

import sys

from trialfinder.cli import main

sys.exit(main())
