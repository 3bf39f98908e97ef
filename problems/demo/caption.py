"""Offline demo image captioning: openclipart drawings and their titles.

A stand-in for the paper's COCO captioning task (section 4) that installs
offline: the public-domain SVG drawings of Debian's `openclipart-svg`
(`/usr/share/openclipart/svg/**/*.svg`, 8,121 files, 25 MB download), each
rendered to a 64x64 RGB PNG with cairosvg (aspect ratio kept, centred on
white) and captioned with its title (the `<dc:title>` of its `cc:Work`
metadata).

The titles are noisy, so a caption is kept only when (`clean_caption`,
`select_captions`): its title is shared by at most `MAX_TITLE_REPEATS` files
(longer runs are collection names such as "Etiquette Icons"); lower-cased,
with `_` and `-` read as spaces, it is 1-`MAX_WORDS` words of letters and
apostrophes; and every word appears in the English side of the Ding
dictionary (this drops Italian titles such as "cavallo" and file-name
titles). Files over `MAX_SVG_BYTES` (100 kB, 8% of the captioned ones) are
skipped: they render ~8x slower. That leaves 1,638 drawings with 1,294
distinct captions. Files that cairosvg refuses (entity declarations,
unsupported units; ~1%) are skipped when rendering.

Splits: a drawing is dev when the hash of its caption is in the first
`DEV_PERCENT` percent (`demo_translate.is_dev`), so no dev caption is a train
caption. Files are taken in hash order of their path up to `MAX_TRAIN` /
`MAX_DEV`, i.e. all of them (1,482 train / 156 dev drawings; ~15 ms of CPU
each to render; minus the ~1% cairosvg refuses). The preprocessor
decodes the PNG to float32 `[32, 32, 3]` in [0, 1] (`IMAGE_SIZE`). Space
IMAGE -> EN_TOK; the metric is BLEU. With one- to three-word object names as
captions, this measures recognising the object more than writing sentences.
"""

from __future__ import annotations

import collections
import functools
import glob
import hashlib
import io
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry, text_features
from problems.demo import translate as demo_translate
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors
from t2t_multimodel.modalities import specs as modality_specs

_LOG = logging.getLogger(__name__)

SVG_DIR = "/usr/share/openclipart/svg"
PACKAGE = "openclipart-svg"
RENDER_SIZE = 64
IMAGE_SIZE = (32, 32)
MAX_TITLE_REPEATS = 3
MAX_WORDS = 8
# Larger drawings take longer to render (~13 ms below, ~100 ms above).
MAX_SVG_BYTES = 100_000
DEV_PERCENT = 10
# Every usable drawing: the dev split needs >= 95 drawings for its BLEU
# and the 1,482 train drawings are few already.
MAX_TRAIN = 2000
MAX_DEV = 200

_CAPTION_RE = re.compile(r"[a-z](?:[a-z' ]*[a-z])?")
_WORD_RE = re.compile(r"[a-z]+")
_DING_TAG_RE = re.compile(r"\{[^}]*\}|\[[^\]]*\]|<[^>]*>")


def svg_title(svg: bytes | str) -> str | None:
    """The title of the drawing (`cc:Work`'s `dc:title`), spaces collapsed.

    Namespace prefixes vary between files (`web.resource.org/cc/` and
    `creativecommons.org/ns#`), so elements are matched by local name.

    Args:
      svg: an SVG document or a path to one.
    """
    root = (
        ET.parse(svg).getroot() if isinstance(svg, str) else ET.fromstring(svg)
    )
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.endswith("}Work"):
            for child in element:
                if child.tag.endswith("}title") and (child.text or "").strip():
                    return " ".join(child.text.split())
            return None
    return None


def normalize_title(title: str) -> str:
    """Lower case, `_` and `-` as spaces, whitespace collapsed."""
    return " ".join(title.lower().replace("_", " ").replace("-", " ").split())


def clean_caption(title: str, english_words: set[str]) -> str | None:
    """The caption for `title`, or None when it is not English words."""
    caption = normalize_title(title)
    if not _CAPTION_RE.fullmatch(caption):
        return None
    words = caption.split()
    if len(words) > MAX_WORDS or not all(w in english_words for w in words):
        return None
    return caption


@functools.lru_cache(maxsize=2)
def ding_english_words(path: str = demo_translate.DING_PATH) -> frozenset[str]:
    """Lower-cased words of the Ding dictionary's English side (tags dropped).

    Raises:
      MissingDataError: when the dictionary is absent.
    """
    if not os.path.exists(path):
        raise problem_lib.MissingDataError(
            f"{path} not found: install it with `apt-get install "
            f"{demo_translate.DING_PACKAGE}`."
        )
    with open(path, encoding="utf-8") as f:
        english = "\n".join(
            line.split(" :: ", 1)[1]
            for line in f
            if " :: " in line and not line.startswith("#")
        )
    words = _WORD_RE.findall(_DING_TAG_RE.sub(" ", english).lower())
    return frozenset(words)


@functools.lru_cache(maxsize=2)
def select_captions(
    svg_dir: str, ding_path: str
) -> tuple[tuple[str, str], ...]:
    """`(svg_path, caption)` of every usable drawing, in path-hash order.

    Raises:
      MissingDataError: when `svg_dir` holds no SVG files.
    """
    paths = sorted(
        glob.glob(os.path.join(svg_dir, "**", "*.svg"), recursive=True)
    )
    if not paths:
        raise problem_lib.MissingDataError(
            f"no SVG files in {svg_dir}: install them with `apt-get install "
            f"{PACKAGE}` (scripts/setup.sh installs every demo package)."
        )
    english_words = ding_english_words(ding_path)
    titles = {}
    for path in paths:
        if os.path.getsize(path) > MAX_SVG_BYTES:
            continue
        try:
            title = svg_title(path)
        except ET.ParseError:
            continue
        if title:
            titles[path] = title
    repeats = collections.Counter(normalize_title(t) for t in titles.values())
    chosen = []
    for path, title in titles.items():
        if repeats[normalize_title(title)] > MAX_TITLE_REPEATS:
            continue
        caption = clean_caption(title, english_words)
        if caption:
            chosen.append((path, caption))

    def order(item: tuple[str, str]) -> bytes:
        relative = os.path.relpath(item[0], svg_dir)
        return hashlib.sha1(relative.encode("utf-8")).digest()

    return tuple(sorted(chosen, key=order))


def _cairosvg():
    # Imported on first use: only this problem needs cairosvg and the libcairo
    # shared library, and `import problems` must work without them.
    try:
        import cairosvg
    except (ImportError, OSError) as error:
        raise problem_lib.MissingDataError(
            f"cannot import cairosvg ({error}): `pip install cairosvg` and "
            "`apt-get install libcairo2`."
        ) from error
    return cairosvg


def render_svg(svg: bytes, size: int = RENDER_SIZE) -> bytes:
    """PNG bytes of the drawing: `size` x `size` RGB, centred on white.

    cairosvg fits the drawing into the square keeping its aspect ratio
    (`preserveAspectRatio` "xMidYMid meet"); transparency is composited onto
    white.

    Raises:
      MissingDataError: when cairosvg or libcairo is not installed.
      Exception: whatever cairosvg raises on a file it cannot render.
    """
    png = _cairosvg().svg2png(
        bytestring=svg, output_width=size, output_height=size
    )
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    buffer = io.BytesIO()
    canvas.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _generator(
    svg_dir: str, ding_path: str, split: str, limit: int
) -> problem_lib.Generator:
    want_dev = split == problem_lib.DEV

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        del tmp_dir  # The data comes from installed packages.
        written = failed = 0
        for path, caption in select_captions(svg_dir, ding_path):
            if written >= limit:
                break
            if demo_translate.is_dev(caption, DEV_PERCENT) != want_dev:
                continue
            with open(path, "rb") as f:
                svg = f.read()
            try:
                png = render_svg(svg)
            except problem_lib.MissingDataError:
                raise
            except Exception as error:  # cairosvg raises many types.
                failed += 1
                _LOG.debug("openclipart: cannot render %s: %s", path, error)
                continue
            written += 1
            yield {"inputs": png, "targets": caption}
        if failed:
            _LOG.info("openclipart %s: %d files not renderable", split, failed)

    return generate


def openclipart_problem(
    svg_dir: str = SVG_DIR,
    ding_path: str = demo_translate.DING_PATH,
    max_train: int = MAX_TRAIN,
    max_dev: int = MAX_DEV,
    name: str = "demo_caption_openclipart",
) -> problem_lib.Problem:
    """The captioning problem over the SVG files under `svg_dir`."""
    limits = {problem_lib.TRAIN: max_train, problem_lib.DEV: max_dev}
    return problem_lib.Problem(
        name=name,
        generators={
            split: _generator(svg_dir, ding_path, split, limit)
            for split, limit in limits.items()
        },
        features={
            "inputs": features_lib.Feature(
                tf.string, (), modality=modality_specs.IMAGE
            ),
            "targets": text_features.TEXT,
        },
        preprocessors=(
            preprocessors.image_feature(IMAGE_SIZE, channels=3, augment=False),
        ),
        metrics=("bleu",),
        input_space_id=features_lib.SpaceID.IMAGE,
        target_space_id=features_lib.SpaceID.EN_TOK,
        raw_files_help=(
            f"`apt-get install {PACKAGE} {demo_translate.DING_PACKAGE}` and "
            "`pip install cairosvg`."
        ),
        num_shards=1,
    )


DEMO_CAPTION_OPENCLIPART = registry.register(openclipart_problem())
