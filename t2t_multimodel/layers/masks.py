"""Boolean attention and padding masks (True = real / may attend).

Helpers for the attention layers of section 2.2 of the paper: the causal
(lower-triangular) mask of the target side, padding masks from lengths, their
combination into one mask broadcastable to attention logits
`[B, heads, Tq, Tk]`, and the additive bias T2T uses (-1e9 where masked).
"""

from __future__ import annotations

from typing import Any

from keras import ops

# T2T's masking bias: large enough to zero a softmax weight, finite so a fully
# masked row still gives a (uniform) distribution instead of NaN.
MASK_BIAS = -1e9


def causal_mask(length: Any, *, query_offset: Any = 0) -> Any:
    """Returns bool `[length, length]`, True at (i, j) where j <= i.

    Args:
      length: number of positions (int or scalar int tensor).
      query_offset: absolute position of query row 0; row i may attend to the
        keys j <= i + query_offset.
    """
    return causal_mask_rect(length, length, query_offset=query_offset)


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


def padding_mask_from_lengths(lengths: Any, max_length: Any) -> Any:
    """Returns bool `[B, max_length]`, True at positions `< lengths[b]`."""
    positions = ops.arange(max_length, dtype="int32")
    # [1, L] < [B, 1] -> [B, L]
    return ops.expand_dims(positions, 0) < ops.expand_dims(
        ops.cast(lengths, "int32"), 1
    )


def attention_mask(
    query_mask: Any = None,
    memory_mask: Any = None,
    causal: bool = False,
    *,
    query_length: Any = None,
    memory_length: Any = None,
    query_offset: Any = 0,
) -> Any:
    """Combines padding and causal masks into one bool mask.

    Args:
      query_mask: bool `[B, Tq]` or None. Masked query rows attend nowhere
        (their softmax becomes uniform); T2T does not mask queries, so the
        body passes None.
      memory_mask: bool `[B, Tk]` or None; True at real memory positions.
      causal: add the causal mask (key j visible to query i iff
        j <= i + query_offset).
      query_length: Tq, needed when `causal` and `query_mask` is None.
      memory_length: Tk, needed when `causal` and `memory_mask` is None.
      query_offset: absolute position of query 0 for the causal mask.

    Returns:
      bool `[B or 1, 1, Tq or 1, Tk or 1]` broadcastable to the attention
      logits `[B, heads, Tq, Tk]`, or None when nothing is masked.
    """
    mask = None
    if memory_mask is not None:
        mask = memory_mask[:, None, None, :]  # [B, 1, 1, Tk]
    if query_mask is not None:
        rows = query_mask[:, None, :, None]  # [B, 1, Tq, 1]
        mask = rows if mask is None else ops.logical_and(mask, rows)
    if causal:
        if query_length is None:
            query_length = ops.shape(query_mask)[1]
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
