"""``python -m fhirlake``: the same as the ``fhirlake`` command."""

from __future__ import annotations

import sys

from fhirlake.cli import main

sys.exit(main())
