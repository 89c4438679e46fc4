"""Expiry times as git reads them (gc.reflogExpire, --expire, --prune): "now", "never",
"90 days", "2.weeks.ago", a date. Kept apart from ops/expire.py so the config can check a
value when it is set without loading the repository code."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime

from modelvc.errors import UsageError

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
          "month": 30 * 86400, "year": 365 * 86400}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)[ .]?(second|minute|hour|day|week|month|year)s?(?:[ .]ago)?$")


def parse_expiry(text: str, now: float | None = None) -> float:
    """The cutoff a TIME means: entries (or data) older than it expire.

    "now"/"all" expire everything, "never"/"false" nothing; "90 days", "2.weeks.ago",
    "1 year ago", or a date ("2026-01-31", "2026-01-31 12:00").
    """
    now = time.time() if now is None else now
    value = text.strip().lower()
    if value in ("now", "all"):
        return math.inf
    if value in ("never", "false"):
        return -math.inf
    match = _RELATIVE.match(value)
    if match:
        return now - float(match[1]) * _UNITS[match[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(f"invalid expiry time '{text}'",
                         hint="use 'now', 'never', '30 days', '2.weeks.ago' or a date like 2026-01-31") from None
