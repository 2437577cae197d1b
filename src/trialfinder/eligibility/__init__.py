"""Eligibility engine: criteria splitting, constraints, patient facts and verdicts.

Pure functions over plain data; the only I/O is loading the versioned vocabularies in ``data/``.
"""

from trialfinder.eligibility.criteria import CriteriaSplit, CriterionItem, split_criteria

__all__ = ["CriteriaSplit", "CriterionItem", "split_criteria"]
