"""Restoring a trained model and finding its vocabulary (SPEC.md section 1).

Decoding, export and the demo rebuild a training run's model from
`model_dir`: its Keras config (`model_config.json`, never re-parsed gin)
and its newest checkpoint (written by the trainer as
`training.checkpoints.weights_by_path`). A problem's vocabulary file is
looked up in a list of directories (the model_dir, then the data_dir).
Missing or mismatched files raise `ModelDirError`, whose message says what
to pass instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

# Imported for their Keras registrations (models are rebuilt from configs).
import t2t_multimodel.modalities.audio  # noqa: F401
import t2t_multimodel.modalities.class_label  # noqa: F401
import t2t_multimodel.modalities.image  # noqa: F401
import t2t_multimodel.modalities.symbol  # noqa: F401
import t2t_multimodel.models.decoder  # noqa: F401
import t2t_multimodel.models.encoder  # noqa: F401
import t2t_multimodel.models.io_mixer  # noqa: F401
import t2t_multimodel.models.multimodel  # noqa: F401
import t2t_multimodel.models.t2t_v19  # noqa: F401
from t2t_multimodel import errors
from t2t_multimodel.data import vocabulary
from t2t_multimodel.training import checkpoints


class ModelDirError(FileNotFoundError):
    """`model_dir` lacks what decoding needs; the message says what to do."""


def _checkpoint_names(directory: str) -> str:
    """The checkpoints in `directory`, for an error message."""
    paths = sorted(tf.io.gfile.glob(os.path.join(directory, "*.index")))
    names = [os.path.basename(p)[: -len(".index")] for p in paths]
    return ", ".join(names[-8:]) if names else "none"


def _config_path(model_dir: str) -> str:
    """`model_dir/model_config.json`; ModelDirError if it is missing."""
    config_path = os.path.join(model_dir, "model_config.json")
    if not tf.io.gfile.exists(config_path):
        raise ModelDirError(
            f"{config_path} not found: {model_dir} is not a training "
            "directory of t2t-mm-trainer (it writes model_config.json and "
            "checkpoints there). Pass the --model_dir of a training run."
        )
    return config_path


def resolve_checkpoint(
    model_dir: str, checkpoint_path: str | None = None
) -> str:
    """The checkpoint to restore: `checkpoint_path`, or the newest.

    Args:
      model_dir: the training run (its `model_config.json` builds the model).
      checkpoint_path: a checkpoint prefix (`M/model.ckpt-500`, or the one
        `t2t-mm-avg-checkpoints` wrote), a directory (its newest
        checkpoint), or None (the newest of `model_dir`).

    Raises:
      ModelDirError: `model_dir` is no training run, no such checkpoint
        (the message lists those there), or one next to a
        `model_config.json` of another model configuration.
    """
    ours = _config_path(model_dir)
    if checkpoint_path is None:
        checkpoint = tf.train.latest_checkpoint(model_dir)
        if checkpoint is None:
            raise ModelDirError(
                f"no checkpoint in {model_dir}: training has not saved one "
                "yet. Wait for the first checkpoint or train longer."
            )
        return checkpoint
    if tf.io.gfile.isdir(checkpoint_path):
        checkpoint = tf.train.latest_checkpoint(checkpoint_path)
        if checkpoint is None:
            raise ModelDirError(
                f"--checkpoint_path={checkpoint_path} is a directory without "
                "a checkpoint; pass a checkpoint prefix such as "
                f"{os.path.join(model_dir, 'model.ckpt-1000')}."
            )
    else:
        checkpoint = checkpoint_path
    directory = os.path.dirname(os.path.abspath(checkpoint))
    if not tf.io.gfile.exists(checkpoint + ".index"):
        raise ModelDirError(
            f"--checkpoint_path={checkpoint_path}: no such checkpoint "
            f"({checkpoint}.index not found). Checkpoints in {directory}: "
            f"{_checkpoint_names(directory)}."
        )
    theirs = os.path.join(directory, "model_config.json")
    if tf.io.gfile.exists(theirs) and os.path.realpath(
        theirs
    ) != os.path.realpath(ours):
        with tf.io.gfile.GFile(theirs) as f, tf.io.gfile.GFile(ours) as g:
            differences = errors.config_differences(
                json.load(g), json.load(f), ignore=("dtype",)
            )
        if differences:
            raise ModelDirError(
                f"checkpoint {checkpoint} belongs to another model: {theirs} "
                f"differs from {ours}: {'; '.join(differences)}. Pass "
                f"--model_dir={directory}, or a checkpoint of {model_dir}."
            )
    return checkpoint


def restore_model(model_dir: str, checkpoint_path: str | None = None) -> Any:
    """Rebuilds the trained model: its Keras config + a checkpoint.

    Args:
      model_dir: the training run (`model_config.json`, checkpoints).
      checkpoint_path: which checkpoint (see `resolve_checkpoint`); None
        restores the newest of `model_dir`.

    Raises:
      ModelDirError: no `model_config.json` or no (such) checkpoint, or a
        checkpoint that does not fit the config.
    """
    config_path = _config_path(model_dir)
    checkpoint = resolve_checkpoint(model_dir, checkpoint_path)
    with tf.io.gfile.GFile(config_path) as f:
        model = keras.saving.deserialize_keras_object(json.load(f))
    # The trainer saves the weights by Keras path (`checkpoints.
    # weights_by_path`); a checkpoint of the model object itself is read too.
    error = None
    for target in (checkpoints.weights_by_path(model), model):
        try:
            status = tf.train.Checkpoint(model=target).restore(checkpoint)
            status.expect_partial().assert_existing_objects_matched()
            return model
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            error = error or e
    expected = {
        key: tuple(w.shape)
        for key, w in checkpoints.weights_by_path(model).weights.items()
    }
    found = errors.checkpoint_weight_shapes(tf.train.list_variables(checkpoint))
    detail = (
        errors.describe_weight_mismatch(expected, found)
        if found
        else str(error)[:300]
    )
    own = os.path.realpath(os.path.dirname(checkpoint))
    why = (
        "was the model_dir reused for another model?"
        if own == os.path.realpath(model_dir)
        else "does --checkpoint_path belong to another model?"
    )
    raise ModelDirError(
        f"checkpoint {checkpoint} does not match {config_path} ({why}): "
        f"{detail}"
    )


def find_vocabulary(
    problem: Any, search_dirs: Sequence[str]
) -> vocabulary.Vocabulary | None:
    """Loads the problem's vocabulary file from the first dir holding it.

    Returns None for problems without text features.

    Raises:
      ModelDirError: the file is in none of `search_dirs`.
    """
    names = sorted(problem.text_vocabularies)
    if not names:
        return None
    if len(names) > 1:
        raise ValueError(
            f"problem {problem.name!r} uses several vocabularies {names}; "
            "decoding supports one"
        )
    dirs = [d for d in search_dirs if d]
    for directory in dirs:
        path = os.path.join(directory, names[0])
        if tf.io.gfile.exists(path):
            return vocabulary.Vocabulary.load(path)
    raise ModelDirError(
        f"vocabulary {names[0]} of problem {problem.name!r} not found in "
        f"{', '.join(dirs)}: pass --data_dir=<the t2t-mm-datagen data_dir>."
    )
