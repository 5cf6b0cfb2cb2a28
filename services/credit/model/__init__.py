"""The credit model (信用模型): facts the ledger records, and the current model that scores them.

Callers import from here; ``MODEL_VERSION`` names the model in force, and each evaluation carries
the version that produced it.
"""

from libs.common.beijing import BEIJING
from services.credit.model.facts import Fact, FactKind, Substantiation
from services.credit.model.v1 import (
    MODEL_VERSION,
    START_SCORE,
    CompanyGrade,
    CompanyRecord,
    Evaluation,
    Grade,
    GradeLine,
    Level,
    Line,
    Standing,
    evaluate,
    grade_company,
    level_of,
    next_change,
    score_of,
)

__all__ = [
    "BEIJING",
    "MODEL_VERSION",
    "START_SCORE",
    "CompanyGrade",
    "CompanyRecord",
    "Evaluation",
    "Fact",
    "FactKind",
    "Grade",
    "GradeLine",
    "Level",
    "Line",
    "Standing",
    "Substantiation",
    "evaluate",
    "grade_company",
    "level_of",
    "next_change",
    "score_of",
]
