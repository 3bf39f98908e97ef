"""Shared test helpers: the layer test, a umask block, a script environment.

`run_layer_test` is the Keras layer test of STYLE.md section 8; `umask` and
`tree_modes` check file modes; `script_env` runs a `bin/` script on this
checkout's code.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def run_layer_test(
    cls: type,
    init_kwargs: Mapping[str, Any],
    input_data: Any,
    expected_output_shape: tuple | None = None,
    expected_num_trainable_weights: int | None = None,
    *,
    call_kwargs: Mapping[str, Any] | None = None,
    expected_output_dtype: str = "float32",
    output_fn: Callable[[Any], Any] | None = None,
    atol: float = 1e-6,
) -> keras.layers.Layer:
    """Checks a layer the way keras-hub checks its layers.

    Builds `cls(**init_kwargs)`, calls it on `input_data` (inference mode) and
    checks: output shape and dtype; the trainable weight count; that
    `get_config`/`from_config` and `keras.saving` serialize round trips give
    layers with identical outputs once the weights are copied; that the layer
    runs inside `tf.function`; that one SGD training step on a sum-of-squares
    loss changes every trainable weight that receives a gradient.

    Args:
      cls: the layer class.
      init_kwargs: constructor arguments.
      input_data: the first positional call argument (tensor or structure).
      expected_output_shape: the output shape, or None to skip the check.
      expected_num_trainable_weights: the number of trainable weights.
      call_kwargs: extra call keyword arguments (masks, ...).
      expected_output_dtype: the dtype of the (selected) output.
      output_fn: selects the tensor to check from a structured output.
      atol: tolerance of the round-trip comparisons.

    Returns:
      The built layer.
    """
    call_kwargs = dict(call_kwargs or {})
    select = output_fn or (lambda y: y)
    layer = cls(**init_kwargs)
    out = select(layer(input_data, training=False, **call_kwargs))
    if expected_output_shape is not None:
        assert tuple(out.shape) == tuple(expected_output_shape), (
            f"{cls.__name__}: shape {tuple(out.shape)} != "
            f"{tuple(expected_output_shape)}"
        )
    assert keras.backend.standardize_dtype(out.dtype) == expected_output_dtype
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"{cls.__name__}: {len(layer.trainable_weights)} trainable weights"
        )

    # Config round trip and keras.saving round trip: same outputs.
    config = layer.get_config()
    for clone in (
        cls.from_config(config),
        keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        ),
    ):
        clone(input_data, training=False, **call_kwargs)
        clone.set_weights(layer.get_weights())
        clone_out = select(clone(input_data, training=False, **call_kwargs))
        np.testing.assert_allclose(
            np.asarray(clone_out), np.asarray(out), atol=atol
        )
        assert clone.get_config() == config

    # Inside tf.function.
    fn_out = tf.function(
        lambda x: select(layer(x, training=False, **call_kwargs))
    )(input_data)
    np.testing.assert_allclose(np.asarray(fn_out), np.asarray(out), atol=1e-5)

    # One training step changes the weights.
    if layer.trainable_weights:
        before = [np.array(w) for w in layer.trainable_weights]
        with tf.GradientTape() as tape:
            y = select(layer(input_data, training=True, **call_kwargs))
            loss = tf.reduce_sum(tf.square(tf.cast(y, "float32")))
            if layer.losses:
                loss += tf.add_n([tf.cast(v, "float32") for v in layer.losses])
        grads = tape.gradient(loss, layer.trainable_weights)
        pairs = [
            (g, w)
            for g, w in zip(grads, layer.trainable_weights)
            if g is not None
        ]
        assert pairs, f"{cls.__name__}: no gradient reaches any weight"
        keras.optimizers.SGD(0.1).apply_gradients(pairs)
        changed = [
            not np.array_equal(b, np.array(w))
            for b, w in zip(before, layer.trainable_weights)
        ]
        assert any(changed), f"{cls.__name__}: training changed no weight"
    return layer


# The T2T v1.9 reference dumps live in shared/ beside the repository (CI lays
# a copy of shared/ next to its clone).
PARITY_DIR = os.path.normpath(
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        os.pardir,
        os.pardir,
        "shared",
        "reference",
        "t2t_v19_parity",
    )
)


def assert_steps_match_call(
    layer: Any, x: Any, encoded: Any, source_mask: Any, full: Any
) -> None:
    """Decoding one position at a time with `layer.step` gives `full`.

    `layer` has the decoder interface (`initial_state(encoded, source_mask,
    length)` and `step(x_t, state, t)`); `full` is its output on all of `x`
    `[B, T, d]` at once.
    """
    length = x.shape[1]
    state = layer.initial_state(encoded, source_mask, length)
    steps = []
    for t in range(length):
        y, state = layer.step(x[:, t : t + 1], state, t)
        steps.append(np.asarray(y))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Sets the process umask in the block and restores the old one after."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def tree_modes(root: str) -> dict[str, int]:
    """Permission bits of `root` (as ".") and of everything under it."""
    modes = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            modes[os.path.relpath(path, root)] = stat.S_IMODE(
                os.stat(path).st_mode
            )
    return modes


def script_env() -> dict[str, str]:
    """The environment of a `bin/` script run from this checkout.

    The checkout goes first on PYTHONPATH: a script's `sys.path` starts with
    `bin/`, so it would otherwise import the installed (editable) package,
    which may be another checkout.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=path)
