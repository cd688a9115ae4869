"""How many examples each Hypothesis test runs: its full count, scaled for the quick run.

``python3 dev.py test`` (the README's command, under 3 minutes on 2 cores) runs every property
test with ``TRACKER_EXAMPLES_SCALE`` (default 0.4) times its full count, and never fewer than
``MINIMUM``; ``.ci/run`` then runs the Hypothesis tests again as their own step with the scale
at 1 (the full counts). ``TRACKER_EXAMPLES_SCALE=10`` is a longer local hunt.
"""

from __future__ import annotations

import os

#: Multiplies each test's full example count (``TRACKER_EXAMPLES_SCALE``, default 0.4).
SCALE = float(os.environ.get("TRACKER_EXAMPLES_SCALE", "0.4"))
#: The fewest examples a property test runs, whatever the scale.
MINIMUM = 10


def examples(full: int) -> int:
    """The example count for a test whose full count is ``full``."""
    return max(MINIMUM, round(full * SCALE))
