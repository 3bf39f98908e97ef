"""SavedModel export with one serving signature per problem, on RAW inputs.

`export` writes a SavedModel (through `keras.export.ExportArchive`) that plain
TensorFlow serves: `import tensorflow_text` (its SentencePiece ops) and
`tf.saved_model.load`, TF Serving or `saved_model_cli run`. Each problem gets
an endpoint named after it (`translate_ende_wmt8k`, ...) whose input is a
batch of raw requests, `tf.string [None]`:
- text -> text: `inputs` (UTF-8 text) -> `outputs` tf.string `[B]`,
  `scores` float32 `[B]` (the best beam's length-penalized log probability);
- image classification: `image_bytes` (JPEG, PNG, BMP or GIF, any size,
  gray or RGB) -> `classes` tf.string `[B]`, `class_ids` int64 `[B]`,
  `scores` float32 `[B, k]` (probabilities of the top k, best first),
  `top_k_class_ids` int64 `[B, k]`, `top_k_classes` tf.string `[B, k]`;
  class names come from `class_names` or the problem's `class_names`
  attribute; without them a class is named by its id (`"3"`);
- captioning: `image_bytes` -> `outputs`, `scores`;
- speech: `audio_bytes` (RIFF WAV, 16-bit PCM, any sample rate, mono or
  stereo; channels averaged, resampled to 16 kHz) -> `outputs`, `scores`.
Tokenization (SentencePiece from the vocabulary's serialized model, a
constant of the graph), image decoding and resizing, WAV decoding,
resampling and log-mel features, and the decoding loop (greedy or beam
search in a `tf.while_loop`, `decoding/samplers.py`) all run inside the
graph; `decoding/decoder.py` holds that code, shared with `t2t-mm-decoder`.

Request limits and errors: text inputs keep their first
`max_input_length - 1` subword ids (plus EOS); answers have at most
`max_length` tokens. A batch holding an empty input, bytes that are not an
image or not a RIFF/WAVE file, or a WAV without samples fails with
`InvalidArgumentError` ("Bad request: image_bytes at batch positions [1]
are empty or not a JPEG, PNG, BMP or GIF image"); a corrupt file of the
right type fails with TF's decoder error. No answer is returned for such a
batch; the server keeps running.

The export is atomic: it is written to a temporary directory next to
`export_dir` and renamed into place (`atomic_write.publish_dir`), so a killed
export leaves no directory that looks complete. Its directories and files
get the modes of the umask (0755 and 0644 under umask 022), so a
`tensorflow_model_server` container or another user can read them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from t2t_multimodel import atomic_write
from t2t_multimodel.data import vocabulary as vocabulary_lib
from t2t_multimodel.decoding import decoder as decoder_lib


def _endpoint_fn(decoder: decoder_lib.ProblemDecoder):
    """`decoder.serve` with its argument named after the serving input.

    The signature's input key is the function's argument name.
    """
    if decoder.input_name == "inputs":

        def serve(inputs):
            return decoder.serve(inputs)

    elif decoder.input_name == "image_bytes":

        def serve(image_bytes):
            return decoder.serve(image_bytes)

    else:

        def serve(audio_bytes):
            return decoder.serve(audio_bytes)

    return serve


def _exists(target: str) -> FileExistsError:
    return FileExistsError(
        f"{target} exists; pass overwrite=True (--overwrite) to replace it "
        "or choose another export_dir"
    )


def export(
    *,
    model: Any,
    problems: Sequence[Any],
    vocabulary: vocabulary_lib.Vocabulary | None,
    export_dir: str,
    beam_size: int = 4,
    alpha: float = 0.6,
    max_length: int = 256,
    max_input_length: int = 256,
    top_k: int = 5,
    class_names: Mapping[str, Sequence[str]] | None = None,
    overwrite: bool = False,
) -> str:
    """Writes the serving SavedModel of `model` for `problems`.

    Args:
      model: the trained `MultiModel`.
      problems: `problems.problem.Problem` values; one endpoint each.
      vocabulary: the shared text vocabulary (None if no problem has text).
      export_dir: the SavedModel directory to create.
      beam_size: 1 for greedy decoding, more for beam search.
      alpha: the beam search length penalty exponent.
      max_length: output tokens at most.
      max_input_length: text inputs are truncated to this many ids.
      top_k: classes returned by classification endpoints.
      class_names: problem name -> class names (else the problem's
        `class_names` attribute, else the ids as strings).
      overwrite: replace an existing `export_dir`.

    Returns:
      `export_dir`.

    Raises:
      FileExistsError: `export_dir` exists and `overwrite` is False.
    """
    if not problems:
        raise ValueError("no problem to export")
    export_dir = os.path.abspath(export_dir)
    if os.path.exists(export_dir) and not overwrite:
        raise _exists(export_dir)  # Fail before the slow tracing.
    config = decoder_lib.DecodeConfig(
        beam_size=beam_size,
        alpha=alpha,
        max_length=max_length,
        max_input_length=max_input_length,
        top_k=top_k,
    )
    archive = keras.export.ExportArchive()
    archive.track(model)
    tracked = set()
    for problem in problems:
        decoder = decoder_lib.ProblemDecoder(
            model,
            problem,
            vocabulary,
            config,
            class_names=(class_names or {}).get(problem.name),
        )
        # The tokenizer's SentencePiece model is a resource to save.
        if decoder.tokenizer is not None and id(decoder.tokenizer) not in (
            tracked
        ):
            archive.track(decoder.tokenizer)
            tracked.add(id(decoder.tokenizer))
        archive.add_endpoint(
            name=problem.name,
            fn=_endpoint_fn(decoder),
            input_signature=[
                tf.TensorSpec([None], tf.string, name=decoder.input_name)
            ],
        )
    tmp = atomic_write.make_temp_dir(export_dir)
    try:
        archive.write_out(tmp, verbose=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        atomic_write.publish_dir(tmp, export_dir, overwrite=overwrite)
    except FileExistsError:
        raise _exists(export_dir) from None
    return export_dir
