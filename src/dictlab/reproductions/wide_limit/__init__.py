"""``dictlab reproduce wide-limit``: a width sweep of (P_K) against the convex wide-dictionary bound."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.wide_limit.run import WideLimitConfig, WideLimitResults, run_wide_limit

REPRODUCTION = Reproduction(
    name="wide-limit",
    config=WideLimitConfig,
    run=run_wide_limit,
    description="width sweep of (P_K) against the convex bound P_∞: gap, L0, ray alignment "
    "(after Dorrell, arXiv 2606.02385)",
)

__all__ = ["REPRODUCTION", "WideLimitConfig", "WideLimitResults", "run_wide_limit"]
