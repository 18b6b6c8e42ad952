import os
import sys

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Hypothesis profiles, chosen by OCSNET_HYPOTHESIS_PROFILE (default "ci"):
#   ci        deterministic examples (derandomized), no deadline: the same run every time;
#   thorough  ten times the examples of every test (hypothesis_budget.examples), random search;
#   quick     a quarter of the examples, for a fast local loop.
# Tests take their example counts from hypothesis_budget.examples(n), scaled by the profile.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
               print_blob=True)
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=1000, **_COMMON)
settings.register_profile("quick", max_examples=25, **_COMMON)
settings.load_profile(os.environ.get("OCSNET_HYPOTHESIS_PROFILE", "ci"))
