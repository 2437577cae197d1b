"""Status groups shared by search, matching and the web pages: one definition each.

Why here: "open for enrolment" decides what a patient sees first in search ranking, what ``match``
considers by default and which statuses the patient filter offers; three copies of that list drifted
apart before (matching once left out ``AVAILABLE``).
"""

from __future__ import annotations

#: Overall statuses of studies a patient can still join (ClinicalTrials.gov's "open" statuses).
OPEN_STATUSES: tuple[str, ...] = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION", "AVAILABLE")

#: The site-level status of a location that takes patients now (``recruitingSitesOnly``, ``--near``).
RECRUITING_SITE = "RECRUITING"

#: Ranking multiplier of open studies at equal text relevance (search's default relevance order).
OPEN_BOOST = 1.15
