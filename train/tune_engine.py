"""``train.tune_engine``'s old import path: the module moved to :mod:`train.experiments.tune_engine`.

The old name is the same module object (not a copy), so that attributes set on it (a test's
monkeypatch, say) reach the code that reads them.
"""

import sys

from train.experiments import tune_engine as _module

sys.modules[__name__] = _module
