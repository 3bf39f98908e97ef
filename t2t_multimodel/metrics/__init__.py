"""t2t_multimodel.metrics: evaluation metrics and trivial baselines.

Host-side functions on NumPy arrays, strings and Python lists (numpy,
sacrebleu and jiwer only), used by training's evaluation and by decoding a
whole split; this package imports neither.
"""

from t2t_multimodel.metrics.baselines import (
    best_constant_output,
    copy_input_bleu,
    majority_class,
    majority_class_accuracy,
    right_branching_f1,
    right_branching_labels,
    right_branching_tree,
)
from t2t_multimodel.metrics.classification import top_k_correct
from t2t_multimodel.metrics.evalb import (
    BracketScores,
    bracket_f1,
    bracket_scores,
    brackets,
)
from t2t_multimodel.metrics.names import (
    BLEU,
    BRACKET_F1,
    DECODED_METRICS,
    EXACT_TREE,
    TOP1,
    TOP5,
    WER,
)
from t2t_multimodel.metrics.text import (
    BleuScore,
    bleu,
    bleu_scorer,
    corpus_bleu,
    exact_match,
    word_error_rate,
)
from t2t_multimodel.metrics.tokens import Accumulator, token_correct
from t2t_multimodel.metrics.trees import (
    Tree,
    is_well_formed,
    linearize,
    parse,
    parse_or_repair,
    repair,
)

__all__ = [
    "BLEU",
    "BRACKET_F1",
    "DECODED_METRICS",
    "EXACT_TREE",
    "TOP1",
    "TOP5",
    "WER",
    "Accumulator",
    "BleuScore",
    "BracketScores",
    "Tree",
    "best_constant_output",
    "bleu",
    "bleu_scorer",
    "bracket_f1",
    "bracket_scores",
    "brackets",
    "copy_input_bleu",
    "corpus_bleu",
    "exact_match",
    "is_well_formed",
    "linearize",
    "majority_class",
    "majority_class_accuracy",
    "parse",
    "parse_or_repair",
    "repair",
    "right_branching_f1",
    "right_branching_labels",
    "right_branching_tree",
    "token_correct",
    "top_k_correct",
    "word_error_rate",
]
