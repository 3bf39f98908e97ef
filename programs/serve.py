"""t2t-mm-serve: an exported MultiModel over TF Serving's REST API + a page.

  t2t-mm-serve [--export_dir=runs/demo/export] [--port=8501]
      [--host=127.0.0.1] [--max_batch_size=32] [--batch_timeout_ms=5]
      [--max_request_bytes=16777216] [--max_instances_per_request=64]
      [--max_image_pixels=16777216] [--max_audio_seconds=60]
      [--allowed_hosts=name,...]

Serves POST /v1/models/multimodel:predict, GET /v1/models/multimodel and
/v1/models/multimodel/metadata, and the page at http://HOST:PORT/.
--port=0 picks a free port (printed on the first line).
"""

from __future__ import annotations

from absl import flags

from programs import cli
from t2t_multimodel import errors

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The server's flags (defined when the program runs, not on import)."""
    flags.DEFINE_string(
        "export_dir", "runs/demo/export", "SavedModel (or numbered versions)."
    )
    flags.DEFINE_string("host", "127.0.0.1", "Address to listen on.")
    flags.DEFINE_integer("port", 8501, "TCP port (0: pick a free one).")
    flags.DEFINE_integer("max_batch_size", 32, "Most instances in one call.")
    flags.DEFINE_float(
        "batch_timeout_ms", 5.0, "How long a request waits for others to batch."
    )
    flags.DEFINE_integer(
        "max_request_bytes", 16 * 1024 * 1024, "Larger bodies get HTTP 413."
    )
    flags.DEFINE_integer(
        "max_instances_per_request", 64, "Requests with more get HTTP 400."
    )
    flags.DEFINE_integer(
        "max_image_pixels",
        4096 * 4096,
        "Images whose header declares more pixels get HTTP 400 (not decoded).",
    )
    flags.DEFINE_float("max_audio_seconds", 60.0, "Longer WAVs get HTTP 400.")
    flags.DEFINE_list(
        "allowed_hosts",
        [],
        "Host header names served besides localhost, IP addresses and --host "
        "('*': any); others get HTTP 403 (DNS rebinding).",
    )
    flags.DEFINE_bool("access_log", False, "Log every request.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    # Imported here so --help answers without loading TensorFlow.
    from t2t_multimodel.serving import app as serving_app

    try:
        serving_app.serve(
            FLAGS.export_dir,
            host=FLAGS.host,
            port=FLAGS.port,
            access_log=FLAGS.access_log,
            max_batch_size=FLAGS.max_batch_size,
            batch_timeout_ms=FLAGS.batch_timeout_ms,
            max_request_bytes=FLAGS.max_request_bytes,
            max_instances_per_request=FLAGS.max_instances_per_request,
            max_image_pixels=FLAGS.max_image_pixels,
            max_audio_seconds=FLAGS.max_audio_seconds,
            allowed_hosts=FLAGS.allowed_hosts,
        )
    except (FileNotFoundError, OSError, ValueError) as e:
        raise errors.UserError(str(e)) from e


def run() -> None:
    """The console entry point."""
    cli.start(main, prog="t2t-mm-serve", doc=__doc__, define_flags=define_flags)
