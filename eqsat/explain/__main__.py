"""`python -m eqsat.explain`: see eqsat/explain/cli.py."""

import sys

from eqsat.explain.cli import main

sys.exit(main())
