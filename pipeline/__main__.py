"""`python -m pipeline URL [URL…] -o DIR` (see pipeline.cli)."""

import sys

from pipeline.cli import main

sys.exit(main())
