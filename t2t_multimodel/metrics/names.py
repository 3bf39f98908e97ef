"""The task-metric names a Problem lists in `Problem.metrics`.

The paper (section 4, Table 1) reports per-token accuracy and negative
log-perplexity for every task and one task metric each: BLEU (translation,
captioning), top-1/top-5 accuracy (image classification), word error rate
(speech) and, for parsing, the percentage of fully correct trees; the bracket
F1 of evalb is the parsing literature's usual number and is reported beside
it. The decoded metrics need generated text, not teacher-forced logits.
"""

from __future__ import annotations

BLEU = "bleu"
TOP1 = "accuracy_top1"
TOP5 = "accuracy_top5"
WER = "wer"
EXACT_TREE = "exact_tree"
BRACKET_F1 = "bracket_f1"
DECODED_METRICS = (BLEU, WER, EXACT_TREE, BRACKET_F1)
