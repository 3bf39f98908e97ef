"""Well-formed trees from the parser at serving time, with TF ops only.

A sequence model that writes linearized trees (`metrics/trees.py`) can emit a
closer that closes nothing, leave a phrase open, or stop after the first of
several top-level constituents. Vinyals et al. (2015, "Grammar as a Foreign
Language") balanced such outputs by adding brackets. `metrics.trees.repair`
does that in Python for scoring; `repair_trees` is the same algorithm (its
steps 1, 2, 3, 5 and 6 without `num_words`) in TF ops, so that the exported
SavedModel's parsing signature (`ProblemDecoder.serve`) answers with a tree,
and says in its `repaired` output which answers the model had not written as
one. `t2t-mm-decoder` keeps printing the model's own n-best sequences and
reports the share that needed a repair (`decoding/scoring.py`):

1. phrases are the labels of `phrase_labels`, `root_label` and every label
   closed in the sequence, `filler_tag` excepted; other labels are leaves
   (POS tags);
2. a closer `/X` closes the innermost open `X`, first closing the phrases
   opened inside it; a closer without an open `X` is dropped;
3. phrases still open at the end are closed there; phrases left without a
   leaf are dropped;
5. a result that is not one phrase is wrapped in `root_label`;
6. an empty result becomes `root_label filler_tag /root_label`.

A well-formed tree comes back unchanged (whitespace normalised). Leaf
counts are kept: serving does not know how the caller tokenized the words.
One difference from `trees.repair`, which first tests the input with
`trees.is_well_formed`: there a closed `filler_tag` is a phrase, here it
stays a leaf (the parsing data has no `XX` phrase, so this never arises from
a model trained on it).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import tensorflow as tf

from t2t_multimodel.metrics import trees


def _is_in(tokens: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """`tokens[i] in labels`, as a bool vector."""
    return tf.reduce_any(
        tf.equal(tf.expand_dims(tokens, 1), tf.expand_dims(labels, 0)),
        axis=1,
    )


def _set(buffer: tf.Tensor, index: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    return tf.tensor_scatter_nd_update(
        buffer, tf.reshape(index, [1, 1]), tf.reshape(value, [1])
    )


def _add(buffer: tf.Tensor, index: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    return tf.tensor_scatter_nd_add(
        buffer, tf.reshape(index, [1, 1]), tf.reshape(value, [1])
    )


class _State(NamedTuple):
    """The loop state of `_repair_one`.

    Attributes:
      out: output tokens (a buffer; the first `out_len` are written).
      out_len: output tokens written.
      labels: labels of the open phrases, outermost first.
      pos: output position of each open phrase's opener.
      children: children of each open phrase so far.
      depth: open phrases.
      top_phrases: finished top-level phrases.
      top_leaves: top-level leaves.
    """

    out: tf.Tensor
    out_len: tf.Tensor
    labels: tf.Tensor
    pos: tf.Tensor
    children: tf.Tensor
    depth: tf.Tensor
    top_phrases: tf.Tensor
    top_leaves: tf.Tensor


def _close_innermost(s: _State) -> _State:
    """Closes the innermost open phrase (dropping it if it has no child)."""
    d = s.depth - 1
    empty = tf.equal(s.children[d], 0)
    kept = tf.where(empty, 0, 1)
    return s._replace(
        out=_set(s.out, s.out_len, trees.CLOSE + s.labels[d]),
        out_len=tf.where(empty, s.pos[d], s.out_len + 1),
        # The closed phrase is a child of the phrase around it, or a top node.
        children=_add(
            s.children, tf.maximum(d - 1, 0), tf.where(d > 0, kept, 0)
        ),
        depth=d,
        top_phrases=s.top_phrases + tf.where(d > 0, 0, kept),
    )


def _close_down_to(s: _State, depth: tf.Tensor) -> _State:
    """Closes open phrases until `depth` of them are left open."""
    (s,) = tf.while_loop(
        lambda s: s.depth > depth, lambda s: (_close_innermost(s),), (s,)
    )
    return s


def _open_phrase(token: tf.Tensor, s: _State) -> _State:
    return s._replace(
        out=_set(s.out, s.out_len, token),
        out_len=s.out_len + 1,
        labels=_set(s.labels, s.depth, token),
        pos=_set(s.pos, s.depth, s.out_len),
        children=_set(s.children, s.depth, tf.constant(0)),
        depth=s.depth + 1,
    )


def _add_leaf(token: tf.Tensor, s: _State) -> _State:
    inside = s.depth > 0
    return s._replace(
        out=_set(s.out, s.out_len, token),
        out_len=s.out_len + 1,
        children=_add(
            s.children, tf.maximum(s.depth - 1, 0), tf.where(inside, 1, 0)
        ),
        top_leaves=s.top_leaves + tf.where(inside, 0, 1),
    )


def _close_phrase(token: tf.Tensor, s: _State) -> _State:
    label = tf.strings.substr(token, 1, tf.strings.length(token) - 1)
    matches = tf.where(tf.equal(s.labels[: s.depth], label))[:, 0]
    # The innermost open phrase of that label, or nothing to close.
    keep = tf.cond(
        tf.size(matches) > 0,
        lambda: tf.cast(matches[-1], tf.int32),
        lambda: s.depth,
    )
    return _close_down_to(s, keep)


def _repair_one(
    text: tf.Tensor,
    phrase_labels: tf.Tensor,
    root_label: str,
    filler_tag: str,
) -> tf.Tensor:
    tokens = tf.strings.split(text)
    n = tf.size(tokens)
    is_closer = tf.strings.regex_full_match(tokens, "/.*")
    closed = tf.strings.regex_replace(
        tf.boolean_mask(tokens, is_closer), "^/", ""
    )
    is_phrase = (
        (_is_in(tokens, phrase_labels) | _is_in(tokens, closed))
        & tf.not_equal(tokens, filler_tag)
        & ~is_closer
    )
    state = _State(
        out=tf.fill([2 * n + 1], ""),  # Each token writes at most one closer.
        out_len=tf.constant(0),
        labels=tf.fill([n + 1], ""),
        pos=tf.zeros([n + 1], tf.int32),
        children=tf.zeros([n + 1], tf.int32),
        depth=tf.constant(0),
        top_phrases=tf.constant(0),
        top_leaves=tf.constant(0),
    )

    def step(i, s):
        token = tokens[i]
        s = tf.cond(
            is_closer[i],
            lambda: _close_phrase(token, s),
            lambda: tf.cond(
                is_phrase[i],
                lambda: _open_phrase(token, s),
                lambda: _add_leaf(token, s),
            ),
        )
        return i + 1, s

    _, state = tf.while_loop(lambda i, s: i < n, step, (tf.constant(0), state))
    state = _close_down_to(state, tf.constant(0))
    body = state.out[: state.out_len]
    one_phrase = tf.equal(state.top_phrases, 1) & tf.equal(state.top_leaves, 0)
    filler = tf.fill([tf.where(tf.equal(state.out_len, 0), 1, 0)], filler_tag)
    wrapped = tf.concat(
        [[root_label], body, filler, [trees.CLOSE + root_label]], axis=0
    )
    result = tf.cond(one_phrase, lambda: body, lambda: wrapped)
    return tf.strings.reduce_join(result, separator=" ")


def repair_trees(
    outputs: tf.Tensor,
    *,
    phrase_labels: Collection[str] = trees.PTB_PHRASE_LABELS,
    root_label: str = trees.DEFAULT_ROOT_LABEL,
    filler_tag: str = trees.FILLER_TAG,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Balances decoded linearized trees (see the module docstring).

    Args:
      outputs: tf.string `[B]`, e.g. `"S NP DT NN /NP VP VBZ"`.
      phrase_labels: labels that open a phrase even when never closed.
      root_label: label of an added root.
      filler_tag: the leaf of an otherwise empty tree.

    Returns:
      `(trees, repaired)`: tf.string `[B]` well-formed linearized trees, and
      bool `[B]`, True where the output was not already a tree (as written,
      whitespace aside).
    """
    labels = tf.constant(sorted(set(phrase_labels) | {root_label}), tf.string)
    fixed = tf.map_fn(
        lambda text: _repair_one(text, labels, root_label, filler_tag),
        outputs,
        fn_output_signature=tf.TensorSpec([], tf.string),
    )
    normalised = tf.strings.reduce_join(
        tf.strings.split(outputs), axis=-1, separator=" "
    )
    return fixed, tf.not_equal(fixed, normalised)
