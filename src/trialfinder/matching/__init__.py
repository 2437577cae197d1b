"""Matching: patient-to-trial retrieval and ranking, and the evaluation harness."""

from trialfinder.matching.match import MatchError, MatchResult, match

__all__ = ["MatchError", "MatchResult", "match"]
