"""TF Serving's REST API: JSON requests to arrays, arrays to JSON answers.

Follows https://www.tensorflow.org/tfx/serving/api_rest so a client can move
to `tensorflow_model_server` unchanged:

- predict requests in row format, `{"signature_name": S, "instances": [...]}`
  (each instance a bare value when the signature has one input, else an
  object `{input_name: value}`), or columnar, `{"inputs": value}` /
  `{"inputs": {input_name: value}}`; binary strings as `{"b64": "..."}`;
  a missing `signature_name` means `serving_default`;
- answers `{"predictions": [...]}` (row; one value per instance, or an object
  of outputs when the signature has several) or `{"outputs": ...}`
  (columnar); string outputs whose name ends in `_bytes`, or that are not
  valid UTF-8, as `{"b64": "..."}`;
- model status and metadata JSON, and errors as `{"error": "..."}` with the
  HTTP status TF Serving gives (400 for bad input, 404 for an unknown model).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from t2t_multimodel.serving import signatures as signatures_lib

DEFAULT_SIGNATURE = "serving_default"
# Deepest list nesting of an input value (TF's largest rank is 254, this
# model's inputs have rank 1); deeper JSON is refused before any recursion
# over it can exhaust Python's stack.
MAX_NESTING = 32


class RestError(Exception):
    """A request the API rejects, with its HTTP status.

    Attributes:
        message: the text of the JSON `error` field.
        status: the HTTP status code.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A decoded predict request.

    Attributes:
        signature_name: the signature to run.
        inputs: one array per input name, batch first.
        num_instances: the batch size.
        columnar: True for the `inputs` format (answer with `outputs`).
    """

    signature_name: str
    inputs: dict[str, np.ndarray]
    num_instances: int
    columnar: bool


def decode_json(body: bytes) -> Any:
    """Parses a request body; `RestError` (400) if it is not JSON."""
    try:
        return json.loads(body)
    except RecursionError:
        raise RestError(
            "JSON Parse error: the JSON is nested too deeply"
        ) from None
    except UnicodeDecodeError as e:
        raise RestError(f"JSON Parse error: body is not UTF-8: {e}") from e
    except json.JSONDecodeError as e:
        raise RestError(f"JSON Parse error: {e.msg} at offset: {e.pos}") from e


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


def _shape(value: Any, where: str, depth: int = 0) -> tuple[int, ...]:
    """The shape of nested JSON lists; raises on ragged or deep nesting."""
    if not isinstance(value, list):
        return ()
    if depth >= MAX_NESTING:
        raise RestError(f"{where}: lists nested deeper than {MAX_NESTING}")
    shapes = {_shape(v, where, depth + 1) for v in value}
    if len(shapes) > 1:
        raise RestError(f"{where}: ragged nested lists (shapes {shapes})")
    return (len(value),) + (shapes.pop() if shapes else ())


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _brief(value: Any) -> str:
    """The start of a JSON value's text, without recursing into it."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    return f"{value!r:.60}"


def _string_leaf(value: Any, where: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if _is_b64(value) and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as e:
            raise RestError(f"{where}: invalid base64 in 'b64': {e}") from e
    raise RestError(
        f'{where}: expected a string or {{"b64": ...}}, got {_brief(value)}'
    )


def to_array(
    value: Any, info: signatures_lib.TensorInfo, where: str
) -> np.ndarray:
    """Converts a batch-first JSON value to an array of the tensor's dtype.

    Raises:
        RestError: wrong leaf types, ragged lists, or a shape that does not
            fit `info.shape`.
    """
    shape = _shape(value, where)
    leaves = _leaves(value)
    try:
        if info.dtype == tf.string:
            flat = np.empty(len(leaves), dtype=object)
            flat[:] = [_string_leaf(leaf, where) for leaf in leaves]
        else:
            if any(isinstance(x, (str, dict, type(None))) for x in leaves):
                raise TypeError(f"expected numbers for {info.dtype.name}")
            flat = np.asarray(leaves, dtype=info.numpy_dtype)
    except (TypeError, ValueError, OverflowError) as e:
        raise RestError(f"{where}: {e}") from e
    array = flat.reshape(shape)
    if info.shape is not None and (
        len(shape) != len(info.shape)
        or any(e is not None and e != s for e, s in zip(info.shape, shape))
    ):
        expected = [-1 if d is None else d for d in info.shape]
        raise RestError(
            f"{where}: expected shape {expected} (batch first), got "
            f"{list(shape)}"
        )
    return array


def _row_inputs(
    instances: Any, spec: signatures_lib.SignatureSpec
) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise RestError("'instances' must be a non-empty list")
    names = list(spec.inputs)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i, instance in enumerate(instances):
        where = f"Failed to process element: {i} of 'instances' list"
        if not isinstance(instance, dict) or _is_b64(instance):
            if len(names) != 1:
                raise RestError(
                    f"{where}. Error: expected a JSON object with the "
                    f"signature's named inputs {names}"
                )
            columns[names[0]].append(instance)
            continue
        for key in instance:
            if key not in columns:
                raise RestError(
                    f"Failed to process element: {i} key: {key} of "
                    "'instances' list. Error: Invalid argument: JSON object: "
                    f"does not have named input: {key} (inputs: {names})"
                )
        for name in names:
            if name not in instance:
                raise RestError(
                    f"{where}. Error: missing named input: {name} "
                    f"(inputs: {names})"
                )
            columns[name].append(instance[name])
    return {
        name: to_array(values, spec.inputs[name], f"input {name!r}")
        for name, values in columns.items()
    }


def _columnar_inputs(
    value: Any, spec: signatures_lib.SignatureSpec
) -> dict[str, np.ndarray]:
    names = list(spec.inputs)
    if not isinstance(value, dict) or _is_b64(value):
        if len(names) != 1:
            raise RestError(
                f"'inputs' must be a JSON object of the named inputs {names}"
            )
        value = {names[0]: value}
    unknown = sorted(set(value) - set(names))
    missing = sorted(set(names) - set(value))
    if unknown or missing:
        raise RestError(
            f"'inputs': unknown named inputs {unknown}, missing {missing} "
            f"(inputs: {names})"
        )
    arrays = {
        name: to_array(value[name], spec.inputs[name], f"input {name!r}")
        for name in names
    }
    sizes = {a.shape[0] if a.ndim else -1 for a in arrays.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise RestError(f"'inputs': inconsistent batch sizes {sorted(sizes)}")
    if sizes == {0}:
        raise RestError("'inputs': the batch is empty")
    return arrays


def _check_count(value: Any, max_instances: int | None) -> None:
    """Refuses a batch-first list longer than `max_instances` (a 400)."""
    if max_instances is None or not isinstance(value, list):
        return
    if len(value) > max_instances:
        raise RestError(
            f"Request has {len(value)} instances, more than the limit of "
            f"{max_instances} per request (t2t-mm-serve "
            "--max_instances_per_request); split it into several requests"
        )


def parse_predict_request(
    body: Any,
    specs: Mapping[str, signatures_lib.SignatureSpec],
    *,
    max_instances: int | None = None,
) -> PredictRequest:
    """Decodes a predict request body (already parsed JSON).

    Args:
        body: the JSON value.
        specs: the model's signatures by name.
        max_instances: most instances in one request (None: no limit);
            checked before any input is converted.

    Raises:
        RestError: any malformed request, unknown signature or input, or
            too many instances.
    """
    if not isinstance(body, dict):
        raise RestError("JSON Value: the request must be a JSON object")
    name = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str) or name not in specs:
        raise RestError(
            f'Serving signature name: "{name}" not found in signature def '
            f"(available: {', '.join(specs)})"
        )
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise RestError(
            "Missing 'inputs' or 'instances' key"
            if not has_rows
            else "Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys exists"
        )
    spec = specs[name]
    if has_rows:
        _check_count(body["instances"], max_instances)
        inputs = _row_inputs(body["instances"], spec)
    else:
        value = body["inputs"]
        columns = value if isinstance(value, dict) else {"": value}
        for column in columns.values():
            _check_count(column, max_instances)
        inputs = _columnar_inputs(value, spec)
    num = next(iter(inputs.values())).shape[0]
    return PredictRequest(name, inputs, num, columnar=has_columns)


def _map_nested(value: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(value, list):
        return [_map_nested(v, fn) for v in value]
    return fn(value)


def _bytes_json(value: bytes, force_b64: bool) -> str | dict[str, str]:
    if not force_b64:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def to_json_value(value: Any, name: str) -> Any:
    """An output value as JSON: lists, numbers, strings or `{"b64": ...}`.

    float32/float16 values print with their shortest round-trip digits (0.1,
    not 0.10000000149011612), as TF Serving does.
    """
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind == "S":
        force = name.endswith("_bytes")
        return _map_nested(array.tolist(), lambda b: _bytes_json(b, force))
    if array.dtype in (np.float32, np.float16):
        shortest = [float(str(x)) for x in array.ravel()]
        return np.asarray(shortest).reshape(array.shape).tolist()
    return array.tolist()


def format_predict_response(
    outputs: Mapping[str, np.ndarray], *, num_instances: int, columnar: bool
) -> dict[str, Any]:
    """The JSON answer to a predict request.

    Raises:
        RestError: (500) in row format, an output without the batch size
            first.
    """
    single = len(outputs) == 1
    if columnar:
        values = {k: to_json_value(v, k) for k, v in outputs.items()}
        return {"outputs": next(iter(values.values())) if single else values}
    for name, value in outputs.items():
        if np.ndim(value) == 0 or np.shape(value)[0] != num_instances:
            raise RestError(
                f"Tensor name: {name} has inconsistent batch size "
                f"{np.shape(value)} for row format; use columnar 'inputs'",
                status=500,
            )
    predictions = []
    for i in range(num_instances):
        row = {k: to_json_value(v[i], k) for k, v in outputs.items()}
        predictions.append(next(iter(row.values())) if single else row)
    return {"predictions": predictions}


def model_status_json(version: str) -> dict[str, Any]:
    """`GET /v1/models/NAME`: one version, AVAILABLE."""
    return {
        "model_version_status": [
            {
                "version": version,
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def model_metadata_json(
    model_name: str, version: str, signature_defs: Mapping[str, dict]
) -> dict[str, Any]:
    """`GET /v1/models/NAME/metadata`: the SignatureDefs, TF Serving layout."""
    return {
        "model_spec": {
            "name": model_name,
            "signature_name": "",
            "version": version,
        },
        "metadata": {"signature_def": {"signature_def": dict(signature_defs)}},
    }
