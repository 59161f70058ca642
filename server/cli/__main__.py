"""``python -m mltrainer.server.cli``: the same as the ``mltrainer`` command."""

import sys

from mltrainer.server.cli import main

sys.exit(main())
