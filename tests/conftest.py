"""Settings every test shares.

Hypothesis' per-example deadline (200 ms by default) measures the machine, not the code: on a
loaded two-core CI box a first example that imports pyarrow or warms DuckDB takes longer and the
test fails as "flaky". Timing belongs in tests/bench/, so no property test here has a deadline.
"""

from hypothesis import settings

settings.register_profile("options-helper", deadline=None)
settings.load_profile("options-helper")
