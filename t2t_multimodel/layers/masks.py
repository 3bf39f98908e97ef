"""Boolean attention and padding masks (True = real / may attend).

Helpers for the attention layers of section 2.2 of the paper: the causal
(lower-triangular) mask of the target side, its combination with the memory
padding mask into one mask broadcastable to attention logits
`[B, heads, Tq, Tk]`, and the additive bias T2T uses (-1e9 where masked).
"""

from __future__ import annotations

from typing import Any

from keras import ops

# T2T's masking bias: large enough to zero a softmax weight, finite so a fully
# masked row still gives a (uniform) distribution instead of NaN.
MASK_BIAS = -1e9


def causal_mask_rect(
    query_length: Any, key_length: Any, *, query_offset: Any = 0
) -> Any:
    """Returns bool `[query_length, key_length]`, True where key <= query.

    Args:
      query_length: number of query positions.
      key_length: number of key positions.
      query_offset: absolute position of query row 0 (e.g. the decoding step).
    """
    rows = ops.arange(query_length, dtype="int32") + ops.cast(
        query_offset, "int32"
    )
    cols = ops.arange(key_length, dtype="int32")
    # [Tq, 1] >= [1, Tk] -> [Tq, Tk]
    return ops.expand_dims(rows, 1) >= ops.expand_dims(cols, 0)


def attention_mask(
    memory_mask: Any = None,
    causal: bool = False,
    *,
    query_length: Any = None,
    memory_length: Any = None,
    query_offset: Any = 0,
) -> Any:
    """Combines the memory padding mask and the causal mask into one.

    Queries are never masked (as in T2T): a padded query position attends
    like a real one and its output is ignored downstream.

    Args:
      memory_mask: bool `[B, Tk]` or None; True at real memory positions.
      causal: add the causal mask (key j visible to query i iff
        j <= i + query_offset).
      query_length: Tq, needed when `causal`.
      memory_length: Tk, needed when `causal` and `memory_mask` is None.
      query_offset: absolute position of query 0 for the causal mask.

    Returns:
      bool `[B or 1, 1, Tq or 1, Tk]` broadcastable to the attention
      logits `[B, heads, Tq, Tk]`, or None when nothing is masked.
    """
    mask = None
    if memory_mask is not None:
        mask = memory_mask[:, None, None, :]  # [B, 1, 1, Tk]
    if causal:
        if memory_length is None:
            memory_length = ops.shape(memory_mask)[1]
        tri = causal_mask_rect(
            query_length, memory_length, query_offset=query_offset
        )[None, None]  # [1, 1, Tq, Tk]
        mask = tri if mask is None else ops.logical_and(mask, tri)
    return mask


def mask_to_bias(mask: Any, dtype: str = "float32") -> Any:
    """Returns 0 where `mask` is True and `MASK_BIAS` (-1e9) where False."""
    return ops.where(
        mask, ops.zeros((), dtype=dtype), ops.full((), MASK_BIAS, dtype=dtype)
    )
