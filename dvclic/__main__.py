"""``python -m dvclic SUBCOMMAND ...``: the same as the ``dvclic`` console command."""

import sys

from .commands import main

sys.exit(main())
