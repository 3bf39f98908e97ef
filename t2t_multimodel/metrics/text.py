"""Text metrics on decoded strings: corpus BLEU, word error rate, exact match.

BLEU (translation and captioning, paper section 4) is sacrebleu's corpus BLEU
with its defaults (13a tokenization, exponential smoothing, mixed case, one
reference), on detokenized text and on the 0-100 scale; `corpus_bleu` also
returns sacrebleu's signature string, so a reported number says how it was
computed. WER (speech) is jiwer's corpus word error rate in percent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jiwer
from sacrebleu import metrics as sacrebleu_metrics


@dataclasses.dataclass(frozen=True)
class BleuScore:
    """A corpus BLEU score and how it was computed.

    Attributes:
      score: BLEU on the 0-100 scale.
      signature: sacrebleu's signature, e.g.
        `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    """

    score: float
    signature: str


def corpus_bleu(
    hypotheses: Sequence[str], references: Sequence[str]
) -> BleuScore:
    """Corpus BLEU of `hypotheses` against one reference each.

    Args:
      hypotheses: detokenized system outputs.
      references: detokenized references, aligned with `hypotheses`.

    Returns:
      The score (0.0 when there are no hypotheses) and sacrebleu's signature.
    """
    metric = sacrebleu_metrics.BLEU()
    if not hypotheses:
        # sacrebleu knows the signature's reference count only once it has
        # scored something: one empty pair, one reference.
        metric.corpus_score([""], [[""]])
        return BleuScore(0.0, str(metric.get_signature()))
    score = metric.corpus_score(list(hypotheses), [list(references)]).score
    return BleuScore(float(score), str(metric.get_signature()))


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """`corpus_bleu(...).score`: corpus BLEU on the 0-100 scale."""
    return corpus_bleu(hypotheses, references).score


def bleu_scorer(references: Sequence[str]) -> Callable[[Sequence[str]], float]:
    """`bleu(hypotheses, references)` as a function of `hypotheses` alone.

    sacrebleu tokenizes and counts the references once, so scoring many
    hypothesis lists against the same references (the constant-output
    baseline tries hundreds) is much cheaper than calling `bleu` each time.

    Args:
      references: detokenized references.

    Returns:
      `score(hypotheses) -> float`, BLEU on the 0-100 scale (0.0 for an empty
      list), equal to `bleu(hypotheses, references)`.
    """
    if not references:
        return lambda hypotheses: 0.0
    metric = sacrebleu_metrics.BLEU(references=[list(references)])

    def score(hypotheses: Sequence[str]) -> float:
        if not hypotheses:
            return 0.0
        return float(metric.corpus_score(list(hypotheses), None).score)

    return score


def word_error_rate(
    hypotheses: Sequence[str], references: Sequence[str]
) -> float:
    """Corpus WER in percent: word edits / reference words * 100.

    Empty references are skipped (WER is undefined for them).
    """
    pairs = [(h, r) for h, r in zip(hypotheses, references) if r.strip()]
    if not pairs:
        return 0.0
    hyps, refs = zip(*pairs)
    return 100.0 * float(jiwer.wer(list(refs), list(hyps)))


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Percentage of hypotheses equal to their reference after stripping.

    For parsing this is the paper's percentage of fully correct trees (the
    linearized tree, POS tags included, is right token for token).
    """
    if not references:
        return 0.0
    hits = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references))
    return 100.0 * hits / len(references)
