"""The one base class of every error the library raises on purpose.

Why a leaf module: every layer (model, store, index, search, eligibility, matching) derives its errors
from :class:`TrialfinderError`, so a caller of the library catches one class; nothing here imports
anything, so no layer depends on another through its errors.
"""

from __future__ import annotations


class TrialfinderError(Exception):
    """Base of every error trialfinder raises for bad input, missing data or an unavailable backend."""
