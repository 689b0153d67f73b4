"""Make ``python hatast/train.py`` work from a source checkout without installing.

Run as a script, Python puts ``hatast/`` itself first on ``sys.path``, where ``test.py`` would shadow the standard
library's ``test`` package and ``hatast`` is not importable. Swap that entry for the checkout root.
"""

import os
import sys


def use_checkout_root(script: str) -> None:
    here = os.path.dirname(os.path.abspath(script))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = os.path.dirname(here)
