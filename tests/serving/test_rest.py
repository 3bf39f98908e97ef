"""Tests of the TF Serving REST mapping: request parsing and JSON answers."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import tensorflow as tf

from t2t_multimodel.serving import rest
from t2t_multimodel.serving import signatures as sig

STRINGS = sig.TensorInfo(tf.string, (None,))
TEXT = sig.SignatureSpec("text", {"inputs": STRINGS}, {"outputs": STRINGS})
PAIR = sig.SignatureSpec(
    "pair",
    {"x": sig.TensorInfo(tf.float32, (None, 2)), "label": STRINGS},
    {
        "scores": sig.TensorInfo(tf.float32, (None, 2)),
        "classes": STRINGS,
    },
)
SPECS = {"text": TEXT, "pair": PAIR}


def _b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


class TestParsePredictRequest:
    def test_row_format_bare_strings_and_b64(self) -> None:
        body = {
            "signature_name": "text",
            "instances": ["hé", _b64(b"\xff\x00")],
        }
        request = rest.parse_predict_request(body, SPECS)
        assert request.signature_name == "text"
        assert request.num_instances == 2
        assert not request.columnar
        assert request.inputs["inputs"].dtype == object
        assert request.inputs["inputs"].tolist() == ["hé".encode(), b"\xff\x00"]

    def test_row_format_named_inputs(self) -> None:
        body = {
            "signature_name": "pair",
            "instances": [
                {"x": [1, 2.5], "label": "a"},
                {"x": [3, 4], "label": "b"},
            ],
        }
        request = rest.parse_predict_request(body, SPECS)
        np.testing.assert_array_equal(
            request.inputs["x"], np.array([[1, 2.5], [3, 4]], np.float32)
        )
        assert request.inputs["x"].dtype == np.float32
        assert request.inputs["label"].tolist() == [b"a", b"b"]

    def test_named_single_input_instance(self) -> None:
        body = {"signature_name": "text", "instances": [{"inputs": "x"}]}
        request = rest.parse_predict_request(body, SPECS)
        assert request.inputs["inputs"].tolist() == [b"x"]

    def test_columnar_format(self) -> None:
        request = rest.parse_predict_request(
            {"signature_name": "text", "inputs": ["a", "b", "c"]}, SPECS
        )
        assert request.columnar and request.num_instances == 3
        request = rest.parse_predict_request(
            {
                "signature_name": "pair",
                "inputs": {"x": [[0, 1]], "label": [_b64(b"q")]},
            },
            SPECS,
        )
        assert request.num_instances == 1
        assert request.inputs["label"].tolist() == [b"q"]

    def test_default_signature_is_serving_default(self) -> None:
        with pytest.raises(rest.RestError, match='"serving_default" not found'):
            rest.parse_predict_request({"instances": ["a"]}, SPECS)
        specs = {"serving_default": TEXT}
        request = rest.parse_predict_request({"instances": ["a"]}, specs)
        assert request.signature_name == "serving_default"

    @pytest.mark.parametrize(
        "body, message",
        [
            ({"signature_name": "nope", "instances": ["a"]}, "not found"),
            ({"signature_name": "text"}, "Missing 'inputs' or 'instances'"),
            (
                {"signature_name": "text", "instances": ["a"], "inputs": ["a"]},
                "only one of",
            ),
            ({"signature_name": "text", "instances": []}, "non-empty list"),
            ({"signature_name": "text", "instances": [3]}, "expected a string"),
            (
                {"signature_name": "text", "instances": [{"b64": "!!"}]},
                "invalid base64",
            ),
            (
                {"signature_name": "text", "instances": [{"text": "a"}]},
                "does not have named input: text",
            ),
            (
                {"signature_name": "text", "instances": [["a", "b"]]},
                r"expected shape \[-1\] \(batch first\), got \[1, 2\]",
            ),
            ({"signature_name": "pair", "instances": ["a"]}, "named inputs"),
            (
                {"signature_name": "pair", "instances": [{"x": [1, 2]}]},
                "missing named input: label",
            ),
            (
                {
                    "signature_name": "pair",
                    "instances": [{"x": [1, 2, 3], "label": "a"}],
                },
                r"expected shape \[-1, 2\]",
            ),
            (
                {
                    "signature_name": "pair",
                    "instances": [{"x": ["1", 2], "label": "a"}],
                },
                "expected numbers",
            ),
            (
                {
                    "signature_name": "pair",
                    "inputs": {"x": [[1, 2]], "label": ["a", "b"]},
                },
                "inconsistent batch sizes",
            ),
            (
                {"signature_name": "text", "inputs": [["a"], "b"]},
                "ragged nested lists",
            ),
            ({"signature_name": "text", "inputs": []}, "batch is empty"),
            ({"signature_name": "text", "inputs": "a"}, r"got \[\]"),
            ([1, 2], "must be a JSON object"),
        ],
    )
    def test_bad_requests_are_400(self, body, message: str) -> None:
        with pytest.raises(rest.RestError, match=message) as error:
            rest.parse_predict_request(body, SPECS)
        assert error.value.status == 400


class TestDecodeJson:
    def test_valid_and_malformed(self) -> None:
        assert rest.decode_json(b'{"a": [1]}') == {"a": [1]}
        with pytest.raises(rest.RestError, match="JSON Parse error") as error:
            rest.decode_json(b'{"a": ')
        assert error.value.status == 400
        with pytest.raises(rest.RestError, match="not UTF-8"):
            rest.decode_json(b'"\xff"')

    def test_deep_nesting_is_400_not_recursion_error(self) -> None:
        with pytest.raises(rest.RestError) as error:
            rest.decode_json(b"[" * 100_000)
        assert error.value.status == 400
        assert error.value.message == (
            "JSON Parse error: the JSON is nested too deeply"
        )


class TestLimits:
    @pytest.mark.parametrize(
        "body",
        [
            {"signature_name": "text", "instances": ["a", "b", "c"]},
            {"signature_name": "text", "inputs": ["a", "b", "c"]},
            {
                "signature_name": "pair",
                "inputs": {"x": [[1, 2]] * 3, "label": ["a"] * 3},
            },
        ],
    )
    def test_max_instances(self, body) -> None:
        with pytest.raises(rest.RestError) as error:
            rest.parse_predict_request(body, SPECS, max_instances=2)
        assert error.value.status == 400
        assert error.value.message.startswith(
            "Request has 3 instances, more than the limit of 2 per request"
        )
        request = rest.parse_predict_request(body, SPECS, max_instances=3)
        assert request.num_instances == 3

    def test_lists_nested_deeper_than_the_limit(self) -> None:
        value = "a"
        for _ in range(rest.MAX_NESTING + 1):
            value = [value]
        with pytest.raises(rest.RestError) as error:
            rest.parse_predict_request(
                {"signature_name": "text", "instances": value}, SPECS
            )
        assert error.value.message == (
            "input 'inputs': lists nested deeper than 32"
        )

    def test_nested_object_is_named_not_printed(self) -> None:
        value: dict = {}
        for _ in range(5000):  # repr() of it would exhaust the stack
            value = {"a": value}
        with pytest.raises(rest.RestError) as error:
            rest.parse_predict_request(
                {"signature_name": "text", "instances": [{"b64": value}]},
                SPECS,
            )
        assert error.value.message == (
            "input 'inputs': expected a string or {\"b64\": ...}, got a JSON "
            "object"
        )


class TestFormatPredictResponse:
    def test_row_single_output_is_bare_values(self) -> None:
        outputs = {"outputs": np.array([b"hi", "é".encode()], object)}
        answer = rest.format_predict_response(
            outputs, num_instances=2, columnar=False
        )
        assert answer == {"predictions": ["hi", "é"]}

    def test_row_multi_output_is_objects_with_shortest_floats(self) -> None:
        outputs = {
            "scores": np.array([[0.1, 0.9], [0.7, 0.3]], np.float32),
            "class_ids": np.array([1, 0], np.int32),
            "classes": np.array([b"b", b"a"], object),
        }
        answer = rest.format_predict_response(
            outputs, num_instances=2, columnar=False
        )
        assert answer == {
            "predictions": [
                {"scores": [0.1, 0.9], "class_ids": 1, "classes": "b"},
                {"scores": [0.7, 0.3], "class_ids": 0, "classes": "a"},
            ]
        }

    def test_columnar(self) -> None:
        one = {"outputs": np.array([b"x"], object)}
        assert rest.format_predict_response(
            one, num_instances=1, columnar=True
        ) == {"outputs": ["x"]}
        two = {"a": np.array([1.5]), "b": np.array([True])}
        assert rest.format_predict_response(
            two, num_instances=1, columnar=True
        ) == {"outputs": {"a": [1.5], "b": [True]}}

    def test_binary_strings_as_b64(self) -> None:
        # Invalid UTF-8 (0xC3 alone) and any output named *_bytes: b64.
        assert rest.to_json_value(np.array([b"\xc3"], object), "outputs") == [
            {"b64": "ww=="}
        ]
        assert rest.to_json_value(np.array(b"ok", object), "png_bytes") == {
            "b64": "b2s="
        }

    def test_row_format_needs_the_batch_size_first(self) -> None:
        with pytest.raises(rest.RestError, match="inconsistent batch") as e:
            rest.format_predict_response(
                {"x": np.zeros([3])}, num_instances=2, columnar=False
            )
        assert e.value.status == 500


def test_status_and_metadata_layout() -> None:
    assert rest.model_status_json("7") == {
        "model_version_status": [
            {
                "version": "7",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    metadata = rest.model_metadata_json("m", "7", {"s": {"inputs": {}}})
    assert metadata == {
        "model_spec": {"name": "m", "signature_name": "", "version": "7"},
        "metadata": {"signature_def": {"signature_def": {"s": {"inputs": {}}}}},
    }
