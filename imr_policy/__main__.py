"""`python -m imr_policy` runs the command-line interface."""

import sys

from imr_policy.cli.main import main

sys.exit(main())
