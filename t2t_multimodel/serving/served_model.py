"""A loaded SavedModel that runs its serving signatures on NumPy batches.

`ServedModel(export_dir)` loads an export of `t2t-mm-exporter` with
`tf.saved_model.load` (after `import tensorflow_text`, whose ops the text
signatures use) and calls one signature on a dict of NumPy arrays. Like
`tensorflow_model_server`, it accepts either a SavedModel directory or a
base directory of numbered versions (`E/1/`, `E/2/`, ...), where it serves the
highest. Errors that come from the request's values (undecodable image or
WAV bytes, wrong shapes) surface as `ModelInputError` with TensorFlow's
message condensed to its one informative line. An export that cannot be
read (a corrupt or truncated `saved_model.pb`, missing variables) raises
`ExportLoadError`, a user error that names the file and says to re-export.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops text signatures use)
from google.protobuf import message

from t2t_multimodel import errors
from t2t_multimodel.serving import signatures as signatures_lib

# TensorFlow errors caused by the values a client sent (HTTP 400).
_INPUT_ERRORS = (
    tf.errors.InvalidArgumentError,
    tf.errors.OutOfRangeError,
    tf.errors.UnimplementedError,
    tf.errors.FailedPreconditionError,
)
_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node .*|<stack traces unavailable>"
    r"|\s+File .*|\s*\[\[\{\{node .*)$"
)
_SUFFIX = re.compile(r"\s*(\[\[\{\{node [^]]*\}\}\]\]|\[Op:[^]]*\])")


class ModelInputError(ValueError):
    """The model rejected the values of a request (an HTTP 400)."""


class ExportLoadError(errors.UserError, ValueError):
    """An export that cannot be loaded; the user re-exports it."""


def _load_error(path: str, reason: str) -> ExportLoadError:
    return ExportLoadError(
        f"cannot load the export {path}: {reason}. The export is corrupt or "
        "incomplete (a failed copy or a disk error); export the model again "
        "with t2t-mm-exporter, or copy the export again."
    )


def condense_tf_error(message: str) -> str:
    """The informative line of a TensorFlow op error message.

    Drops "Graph execution error", "Detected at node ..." and stack-trace
    lines, and the trailing `[[{{node ...}}]]` and `[Op:...]` markers, e.g.
    "Unknown image file format. One of JPEG, PNG, GIF, BMP required.".
    """
    lines = [line for line in message.splitlines() if line.strip()]
    kept = [_SUFFIX.sub("", line).strip() for line in lines]
    kept = [k for k, line in zip(kept, lines) if k and not _NOISE.match(line)]
    return errors.condense_assert("; ".join(kept) if kept else message.strip())


def resolve_version(export_dir: str) -> tuple[str, str]:
    """The SavedModel directory and version string served for `export_dir`.

    Args:
        export_dir: a SavedModel directory (served as version "1"), or a
            directory of numbered SavedModel directories.

    Returns:
        `(saved_model_dir, version)`.

    Raises:
        FileNotFoundError: neither layout is found.
    """
    if tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        return export_dir, "1"
    versions = []
    if tf.io.gfile.isdir(export_dir):
        for entry in tf.io.gfile.listdir(export_dir):
            entry = entry.rstrip("/")
            path = os.path.join(export_dir, entry, "saved_model.pb")
            if entry.isdigit() and tf.io.gfile.exists(path):
                versions.append(int(entry))
    if not versions:
        raise FileNotFoundError(
            f"{export_dir}: no saved_model.pb, nor numbered version "
            "directories holding one (run t2t-mm-exporter first)"
        )
    version = str(max(versions))
    return os.path.join(export_dir, version), version


class ServedModel:
    """A SavedModel's serving signatures, callable on NumPy batches.

    Not thread-safe by design: one thread (the batching worker) makes every
    call to `run`.

    Args:
        export_dir: see `resolve_version`.

    Attributes:
        saved_model_dir: the directory loaded.
        version: the served version, as a string.
        signatures: `SignatureSpec` by signature name.
    """

    def __init__(self, export_dir: str) -> None:
        self.saved_model_dir, self.version = resolve_version(export_dir)
        pb = os.path.join(self.saved_model_dir, "saved_model.pb")
        try:
            self._signature_defs = signatures_lib.read_signature_defs(
                self.saved_model_dir
            )
        except message.DecodeError as e:
            raise _load_error(pb, f"not a SavedModel protobuf ({e})") from e
        except signatures_lib.NoServeGraphError as e:
            raise _load_error(pb, str(e)) from e
        self.signatures = {
            name: signatures_lib.signature_spec(name, proto)
            for name, proto in sorted(self._signature_defs.items())
        }
        try:
            self._loaded = tf.saved_model.load(self.saved_model_dir)
        except tf.errors.OpError as e:
            reason = condense_tf_error(e.message)
            raise _load_error(self.saved_model_dir, reason) from e
        except (OSError, message.DecodeError) as e:
            # TF's loader raises FileNotFoundError for missing variables,
            # with a second line of advice about devices that does not apply.
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise _load_error(self.saved_model_dir, reason) from e
        self._functions = dict(self._loaded.signatures)
        missing = set(self.signatures) - set(self._functions)
        if missing:
            raise ValueError(f"signatures not loadable: {sorted(missing)}")

    def signature_def_json(self) -> dict[str, dict]:
        """Every servable `SignatureDef` as JSON, by name (TF Serving style)."""
        return {
            name: signatures_lib.signature_def_json(self._signature_defs[name])
            for name in self.signatures
        }

    def run(
        self, signature_name: str, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Calls one signature on a batch.

        Args:
            signature_name: a key of `signatures`.
            inputs: one array per input name, batch first, of the
                signature's dtypes (object arrays of bytes for strings).

        Returns:
            One array per output name, batch first.

        Raises:
            KeyError: unknown signature.
            ModelInputError: the model rejected the values.
        """
        spec = self.signatures[signature_name]
        function = self._functions[signature_name]
        try:
            tensors = {
                name: tf.constant(inputs[name], dtype=info.dtype)
                for name, info in spec.inputs.items()
            }
            outputs = function(**tensors)
        except _INPUT_ERRORS as e:
            raise ModelInputError(condense_tf_error(e.message)) from e
        except (TypeError, ValueError) as e:
            raise ModelInputError(str(e)) from e
        return {name: value.numpy() for name, value in outputs.items()}
