"""The text feature every text problem stores (paper section 2.1).

All text, in every language and in the linearized parse trees, is tokenized
with the paper's one shared 8k subword vocabulary and goes through the one
shared `symbol` modality. Problems name this value for each text feature so
the stored dtype, the vocabulary file and the modality cannot drift apart
between problems.
"""

from __future__ import annotations

import tensorflow as tf

from t2t_multimodel.data import features
from t2t_multimodel.modalities import specs

# The shared vocabulary's file name in `data_dir` (and in `model_dir`).
SHARED_VOCAB_FILE = f"vocab.shared.{specs.VOCAB_SIZE}.model"

# Token ids of variable length, through the shared symbol modality.
TEXT = features.Feature(
    tf.int64,
    (None,),
    modality=specs.SYMBOL,
    vocabulary=SHARED_VOCAB_FILE,
)
