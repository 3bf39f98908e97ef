"""Does an output answer in its task's target: language or tree format?

The command token (paper section 2.4: "To-German", "To-Parse-Tree") must
steer every output into its task's target, on in-domain input and on input
unlike the training data. This module checks outputs for that:

- `identify_language`: the language of a text, with py3langid (the
  maintained fork of langid.py, Lui and Baldwin 2012: a naive Bayes model
  over byte n-grams shipped inside the package, offline, numpy only),
  restricted to the candidate languages of the check (English, German,
  French by default: the demo's target languages). Short strings are hard
  for any identifier; restricting the candidates is what keeps 3-6 word
  outputs reliable.
- `output_format`: `"tree"` for a well-formed linearized parse tree
  (`trees.is_well_formed`), else the identified language.
- `target_share`: the share of outputs whose format is the expected one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from t2t_multimodel.metrics import trees

TREE = "tree"
DEFAULT_LANGUAGES = ("en", "de", "fr")


@functools.lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]):
    # Imported on first use: the rest of the metrics do not need it.
    from py3langid import langid

    identifier = langid.LanguageIdentifier.from_modelpath(
        langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=False
    )
    identifier.set_languages(list(languages))
    return identifier


def identify_language(
    text: str, languages: Sequence[str] = DEFAULT_LANGUAGES
) -> str:
    """The most likely of `languages` for `text` (ISO 639-1 code).

    Returns:
      A code from `languages`; `""` for a text without letters.
    """
    if not any(c.isalpha() for c in text):
        return ""
    code, _ = _identifier(tuple(languages)).classify(text)
    return str(code)


def output_format(
    text: str, languages: Sequence[str] = DEFAULT_LANGUAGES
) -> str:
    """`"tree"` for a well-formed linearized tree, else its language."""
    if trees.is_well_formed(text):
        return TREE
    return identify_language(text, languages)


def target_share(
    outputs: Sequence[str],
    expected: str,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
) -> float:
    """The share of `outputs` in the `expected` language or format.

    Args:
      outputs: decoded outputs.
      expected: a language code of `languages`, or `TREE`.
      languages: the candidate languages of the identifier.

    Returns:
      A fraction in [0, 1]; 0.0 without outputs.
    """
    if not outputs:
        return 0.0
    if expected == TREE:
        hits = sum(trees.is_well_formed(o) for o in outputs)
    else:
        hits = sum(identify_language(o, languages) == expected for o in outputs)
    return hits / len(outputs)
