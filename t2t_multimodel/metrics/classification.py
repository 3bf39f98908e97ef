"""Classification metrics: top-k accuracy (image classification, section 4).

The paper reports top-1 and top-5 accuracy on ImageNet; `top_k_correct`
counts the hits of one batch so that callers sum them over a split.
"""

from __future__ import annotations

import numpy as np


def top_k_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """Number of rows whose label is among the `k` largest logits.

    Args:
      logits: `[batch, num_classes]`.
      labels: `[batch]` int class ids.
      k: how many top classes count.

    Returns:
      The number of hits in the batch.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).reshape(-1)
    k = min(k, logits.shape[-1])
    # Indices of the k largest logits per row (order inside the k is moot).
    top = np.argpartition(-logits, k - 1, axis=-1)[:, :k]  # [batch, k]
    return int(np.sum(np.any(top == labels[:, None], axis=-1)))
