"""``python -m pyro_personax`` runs the ``personax`` command line."""

import sys

from pyro_personax.cli import main

sys.exit(main())
