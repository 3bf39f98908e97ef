"""Tests of the demo captioning problem (openclipart SVG titles)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry
from problems.demo import caption as demo_caption
from problems.demo import translate as demo_translate

try:
    import cairosvg  # noqa: F401

    _HAS_CAIRO = True
except (ImportError, OSError):
    _HAS_CAIRO = False

_CC_OLD = "http://web.resource.org/cc/"
_CC_NEW = "http://creativecommons.org/ns#"


def make_svg(title: str, cc: str = _CC_NEW, width: int = 100) -> str:
    """A `width` x 50 red rectangle with openclipart-style metadata."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="50"
     xmlns:cc="{cc}" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <metadata><rdf:RDF><cc:Work rdf:about="">
    <dc:title>{title}</dc:title>
    <dc:publisher><cc:Agent><dc:title>Open Clip Art Library</dc:title>
    </cc:Agent></dc:publisher>
  </cc:Work></rdf:RDF></metadata>
  <rect x="0" y="0" width="{width}" height="50" fill="#ff0000"/>
</svg>
"""


class TestTitles:
    def test_svg_title_with_either_namespace(self, tmp_path):
        for cc in (_CC_OLD, _CC_NEW):
            path = tmp_path / "a.svg"
            path.write_text(make_svg("  Red   Apple ", cc))
            assert demo_caption.svg_title(str(path)) == "Red Apple"
        no_title = make_svg("", _CC_NEW).encode()
        assert demo_caption.svg_title(no_title) is None

    def test_clean_caption(self):
        english = {"red", "apple", "tree", "o", "clock", "it's"}
        clean = demo_caption.clean_caption
        assert clean("Red_Apple", english) == "red apple"
        assert clean("apple-tree", english) == "apple tree"
        assert clean("It's o Clock", english) == "it's o clock"
        assert clean("Mela rossa", english) is None  # Not English words.
        assert clean("apple 2", english) is None
        assert clean("red " * 9, english) is None  # 9 words.

    def test_select_captions_filters(self, tmp_path):
        ding = tmp_path / "de-en"
        ding.write_text(
            "# c :: comment words\nApfel {m} | roter Apfel :: apple | red "
            "apple [coll.]\nBaum :: tree; bush <shrub> {n}\n",
            encoding="utf-8",
        )
        svg_dir = tmp_path / "svg"
        (svg_dir / "food").mkdir(parents=True)
        files = {
            "food/a.svg": "Red apple",
            "food/b.svg": "Tree",
            "c.svg": "Mela",  # Italian.
            "d.svg": "shrub",  # Only in a <tag>: not counted as English.
        }
        files.update({f"set{i}.svg": "apple tree" for i in range(4)})
        for name, title in files.items():
            (svg_dir / name).write_text(make_svg(title))
        (svg_dir / "huge.svg").write_text(
            make_svg("apple") + " " * demo_caption.MAX_SVG_BYTES
        )
        chosen = demo_caption.select_captions(str(svg_dir), str(ding))
        # "apple tree" is the title of 4 files (> 3 repeats): a collection.
        assert sorted(chosen) == [
            (str(svg_dir / "food/a.svg"), "red apple"),
            (str(svg_dir / "food/b.svg"), "tree"),
        ]

    def test_missing_svg_dir(self, tmp_path):
        with pytest.raises(problem_lib.MissingDataError, match="openclipart"):
            demo_caption.select_captions(str(tmp_path), "/unused")


@pytest.mark.skipif(not _HAS_CAIRO, reason="pip install cairosvg")
class TestRender:
    def test_render_keeps_aspect_on_white(self):
        png = demo_caption.render_svg(make_svg("x", width=100).encode(), 64)
        image = Image.open(io.BytesIO(png))
        assert (image.mode, image.size) == ("RGB", (64, 64))
        pixels = np.asarray(image)
        # A 2:1 rectangle fills rows 16..47 of the square, centred.
        np.testing.assert_array_equal(pixels[32, 32], [255, 0, 0])
        np.testing.assert_array_equal(pixels[2, 32], [255, 255, 255])
        np.testing.assert_array_equal(pixels[61, 32], [255, 255, 255])
        red_rows = np.nonzero(pixels[:, 32, 1] == 0)[0]
        assert (red_rows[0], red_rows[-1]) == (16, 47)

    def test_problem_on_small_dir(self, tmp_path):
        ding = tmp_path / "de-en"
        words = ["apple", "tree", "house", "car", "dog", "cat", "sun", "boat"]
        ding.write_text(
            "".join(f"Wort :: {w}\n" for w in words), encoding="utf-8"
        )
        svg_dir = tmp_path / "svg"
        svg_dir.mkdir()
        for i, (a, b) in enumerate(zip(words, words[1:] + words[:1])):
            (svg_dir / f"{i}.svg").write_text(make_svg(f"{a} {b}"))
        # An internal entity, as in Illustrator exports: cairosvg refuses it.
        (svg_dir / "broken.svg").write_text(
            make_svg("dog cat").replace(
                "?>", '?>\n<!DOCTYPE svg [<!ENTITY ns_a "http://a.b/">]>', 1
            )
        )
        problem = demo_caption.openclipart_problem(
            str(svg_dir), str(ding), max_train=99, max_dev=99, name="t_cap"
        )
        train = list(problem.generate("train", ""))
        dev = list(problem.generate("dev", ""))
        captions = {e["targets"] for e in train} | {e["targets"] for e in dev}
        # 9 files, one not renderable; 8 distinct captions.
        assert len(train) + len(dev) == 8 and len(captions) == 8
        capped = demo_caption.openclipart_problem(
            str(svg_dir), str(ding), max_train=2, max_dev=0, name="t_cap2"
        )
        assert list(capped.generate("train", "")) == train[:2]
        assert list(capped.generate("dev", "")) == []
        assert all(
            demo_translate.is_dev(e["targets"], demo_caption.DEV_PERCENT)
            for e in dev
        )
        assert captions <= {f"{a} {b}" for a, b in zip(words, words[1:])} | {
            "boat apple"
        }
        with pytest.raises(Exception, match="EntitiesForbidden|ns_a"):
            demo_caption.render_svg((svg_dir / "broken.svg").read_bytes())
        dataset = tf.data.Dataset.from_tensors({"inputs": train[0]["inputs"]})
        for preprocess in problem.preprocessors:
            dataset = preprocess(dataset)
        image = next(iter(dataset))["inputs"]
        assert image.shape == (*demo_caption.IMAGE_SIZE, 3)
        np.testing.assert_allclose(image[16, 16], [1.0, 0.0, 0.0], atol=1e-6)


@pytest.mark.skipif(
    not os.path.isdir(demo_caption.SVG_DIR) or not _HAS_CAIRO,
    reason="apt-get install openclipart-svg; pip install cairosvg",
)
class TestRealOpenclipart:
    def test_selection_and_first_examples(self):
        chosen = demo_caption.select_captions(
            demo_caption.SVG_DIR, demo_translate.DING_PATH
        )
        assert len(chosen) == 1638
        assert len({caption for _, caption in chosen}) == 1294
        problem = registry.get_problem("demo_caption_openclipart")
        small = demo_caption.openclipart_problem(max_train=3, max_dev=3)
        train = [e["targets"] for e in small.generate("train", "")]
        dev = [e["targets"] for e in small.generate("dev", "")]
        assert train == ["pasta", "right hand print", "model view controller"]
        assert dev == ["eu flag", "chess set symbols", "io"]
        assert problem.metrics == ("bleu",)
