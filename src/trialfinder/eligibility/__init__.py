"""Eligibility engine: criteria splitting, constraints, patient facts and verdicts.

Pure functions over plain data; the only I/O is loading the versioned vocabularies in ``data/``.
"""

from trialfinder.eligibility.constraints import Constraint, extract_constraints
from trialfinder.eligibility.evaluate import (
    LABELS,
    CriterionVerdict,
    Question,
    StudyVerdict,
    evaluate_answers,
    evaluate_criterion,
    evaluate_study,
    prescreen_questions,
)
from trialfinder.eligibility.patient import Patient, extract_patient
from trialfinder.eligibility.vocab import Vocab, VocabError, load_vocab
from trialfinder.model.criteria import CriteriaSplit, CriterionItem, split_criteria

__all__ = [
    "LABELS",
    "Constraint",
    "CriteriaSplit",
    "CriterionItem",
    "CriterionVerdict",
    "Patient",
    "Question",
    "StudyVerdict",
    "Vocab",
    "VocabError",
    "evaluate_answers",
    "evaluate_criterion",
    "evaluate_study",
    "extract_constraints",
    "extract_patient",
    "load_vocab",
    "prescreen_questions",
    "split_criteria",
]
