"""Tests of the WMT translation problems on small release-format files."""

from __future__ import annotations

import gzip
import io
import logging
import tarfile

import pytest

from problems import problem as problem_lib
from problems import registry
from problems.paper import translate_wmt
from t2t_multimodel.data import features as features_lib

SRC_SGM = """\
<srcset setid="newstest2013" srclang="any">
<doc sysid="ref" docid="1012-bbc" genre="news" origlang="en">
<hl>
<seg id="1">A Republican strategy &amp; its &quot;results&quot;</seg>
</hl>
<p>
<seg id="2">It&#39;s 3 &lt; 4 .</seg>
<seg id="3">Only in the source.</seg>
</p>
</doc>
<doc sysid="ref" docid="1013-cnn" genre="news" origlang="de">
<p>
<seg id="1"> Second   document. </seg>
</p>
</doc>
</srcset>
"""
# Same ids, segments listed in another order, and seg 3 missing.
REF_DE_SGM = """\
<refset setid="newstest2013" srclang="any" trglang="de">
<doc sysid="ref" docid="1013-cnn" genre="news" origlang="de">
<p>
<seg id="1">Zweites Dokument.</seg>
</p>
</doc>
<doc sysid="ref" docid="1012-bbc" genre="news" origlang="en">
<p>
<seg id="2">Es ist 3 &lt; 4 .</seg>
<seg id="1">Eine Strategie &amp; ihre &quot;Ergebnisse&quot;</seg>
</p>
</doc>
</refset>
"""
DEV_DE_EXPECTED = [
    {
        "inputs": 'A Republican strategy & its "results"',
        "targets": 'Eine Strategie & ihre "Ergebnisse"',
    },
    {"inputs": "It's 3 < 4 .", "targets": "Es ist 3 < 4 ."},
    {"inputs": "Second   document.", "targets": "Zweites Dokument."},
]


def _add_to_tar(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _write_ende(tmp_path) -> None:
    # news-commentary v11, unpacked under its archive path; one empty pair,
    # one pair with an empty German side, and one extra English line.
    nc = tmp_path / "training-parallel-nc-v11"
    nc.mkdir()
    (nc / "news-commentary-v11.de-en.en").write_text(
        "Hello world.\n\nGood morning.\nBye.\r\nExtra line.\n"
    )
    (nc / "news-commentary-v11.de-en.de").write_text(
        "Hallo Welt.\n\n\nTschüss.\n"
    )
    # commoncrawl only as the downloaded .tgz (other pairs inside too).
    with tarfile.open(
        tmp_path / "training-parallel-commoncrawl.tgz", "w:gz"
    ) as t:
        _add_to_tar(t, "commoncrawl.fr-en.en", b"Not this.\n")
        _add_to_tar(t, "commoncrawl.de-en.annotation", b"x\n")
        _add_to_tar(t, "commoncrawl.de-en.en", b"A cat.\nA dog.\n")
        _add_to_tar(
            t, "commoncrawl.de-en.de", "Eine Katze.\nEin Hund läuft.\n".encode()
        )
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "newstest2013-src.en.sgm").write_text(SRC_SGM)
    (tmp_path / "newstest2013-ref.de.sgm").write_text(REF_DE_SGM)


class TestTranslateEnde:
    def test_train_text_and_archive(self, tmp_path, caplog):
        _write_ende(tmp_path)
        with caplog.at_level(logging.WARNING):
            examples = list(
                translate_wmt.TRANSLATE_ENDE_WMT8K.generate(
                    "train", str(tmp_path)
                )
            )
        assert examples == [
            {"inputs": "Hello world.", "targets": "Hallo Welt."},
            {"inputs": "Bye.", "targets": "Tschüss."},
            {"inputs": "A cat.", "targets": "Eine Katze."},
            {"inputs": "A dog.", "targets": "Ein Hund läuft."},
        ]
        assert (
            "skipped 2 pairs with an empty side and 1 unpaired" in caplog.text
        )
        assert "training-parallel-europarl-v7.tgz not found" in caplog.text

    def test_dev_sgml_aligned_by_ids(self, tmp_path, caplog):
        _write_ende(tmp_path)
        with caplog.at_level(logging.WARNING):
            dev = list(
                translate_wmt.TRANSLATE_ENDE_WMT8K.generate(
                    "dev", str(tmp_path)
                )
            )
        assert dev == DEV_DE_EXPECTED
        assert "skipped 1 source segments without reference" in caplog.text

    def test_dev_from_dev_tgz(self, tmp_path):
        with tarfile.open(tmp_path / "dev.tgz", "w:gz") as t:
            _add_to_tar(t, "dev/newstest2013-src.en.sgm", SRC_SGM.encode())
            _add_to_tar(t, "dev/newstest2013-ref.de.sgm", REF_DE_SGM.encode())
        dev = translate_wmt.TRANSLATE_ENDE_WMT8K.generate("dev", str(tmp_path))
        assert list(dev) == DEV_DE_EXPECTED

    def test_reverse(self, tmp_path):
        _write_ende(tmp_path)
        ende = translate_wmt.TRANSLATE_ENDE_WMT8K
        deen = registry.get_problem("translate_deen_wmt8k")
        assert deen is translate_wmt.TRANSLATE_DEEN_WMT8K
        assert (ende.input_space_id, ende.target_space_id) == (
            features_lib.SpaceID.EN_TOK,
            features_lib.SpaceID.DE_TOK,
        )
        assert (deen.input_space_id, deen.target_space_id) == (8, 3)
        assert deen.features["inputs"] is ende.features["targets"]
        assert deen.features["targets"] is ende.features["inputs"]
        assert deen.metrics == ("bleu",)
        assert list(deen.generate("dev", str(tmp_path)))[1] == {
            "inputs": "Es ist 3 < 4 .",
            "targets": "It's 3 < 4 .",
        }

    def test_missing_files_message(self, tmp_path):
        for split in ("train", "dev"):
            with pytest.raises(problem_lib.MissingDataError) as info:
                list(
                    translate_wmt.TRANSLATE_ENDE_WMT8K.generate(
                        split, str(tmp_path)
                    )
                )
            message = str(info.value)
            assert "training/europarl-v7.de-en.de" in message
            assert (
                "http://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz"
                in message
            )
            assert "dev/newstest2013-ref.de.sgm" in message
            assert (
                "http://data.statmt.org/wmt19/translation-task/dev.tgz"
                in message
            )


NEWSTEST2014_EN = SRC_SGM.replace("newstest2013", "newstest2014")
NEWSTEST2014_DE = REF_DE_SGM.replace("newstest2013", "newstest2014")


class TestNewstest2014:
    """The test split: newstest2014 SGML from dev.tgz or test-full.tgz."""

    @pytest.mark.parametrize(
        "archive,members",
        [
            (  # WMT's dev.tgz: the English source, German reference.
                "dev.tgz",
                (
                    "dev/newstest2014-deen-src.en.sgm",
                    "dev/newstest2014-deen-ref.de.sgm",
                ),
            ),
            (  # Only the other direction's files: the same segments.
                "dev.tgz",
                (
                    "dev/newstest2014-deen-ref.en.sgm",
                    "dev/newstest2014-deen-src.de.sgm",
                ),
            ),
            (  # sacrebleu's wmt14/full.
                "test-full.tgz",
                (
                    "test-full/newstest2014-deen-src.en.sgm",
                    "test-full/newstest2014-deen-ref.de.sgm",
                ),
            ),
        ],
    )
    def test_from_archive(self, tmp_path, archive, members):
        with tarfile.open(tmp_path / archive, "w:gz") as t:
            _add_to_tar(t, "dev/newstest2013-src.en.sgm", SRC_SGM.encode())
            _add_to_tar(t, members[0], NEWSTEST2014_EN.encode())
            _add_to_tar(t, members[1], NEWSTEST2014_DE.encode())
        ende = translate_wmt.TRANSLATE_ENDE_WMT8K
        assert list(ende.generate("test", str(tmp_path))) == DEV_DE_EXPECTED
        deen = registry.get_problem("translate_deen_wmt8k")
        assert list(deen.generate("test", str(tmp_path)))[0] == {
            "inputs": 'Eine Strategie & ihre "Ergebnisse"',
            "targets": 'A Republican strategy & its "results"',
        }

    def test_dev_tgz_without_2014_falls_back_to_test_full(self, tmp_path):
        with tarfile.open(tmp_path / "dev.tgz", "w:gz") as t:
            _add_to_tar(t, "dev/newstest2013-src.en.sgm", SRC_SGM.encode())
        with pytest.raises(problem_lib.MissingDataError) as error:
            list(
                translate_wmt.TRANSLATE_ENDE_WMT8K.generate(
                    "test", str(tmp_path)
                )
            )
        assert "no newstest2014" in str(error.value)
        assert "https://statmt.org/wmt14/test-full.tgz" in str(error.value)
        (tmp_path / "newstest2014-deen-src.en.sgm").write_text(NEWSTEST2014_EN)
        (tmp_path / "newstest2014-deen-ref.de.sgm").write_text(NEWSTEST2014_DE)
        test = translate_wmt.TRANSLATE_ENDE_WMT8K.generate(
            "test", str(tmp_path)
        )
        assert list(test) == DEV_DE_EXPECTED

    def test_enfr(self, tmp_path):
        src = NEWSTEST2014_EN.replace('origlang="de"', 'origlang="fr"')
        ref = NEWSTEST2014_DE.replace('trglang="de"', 'trglang="fr"')
        (tmp_path / "dev").mkdir()
        (tmp_path / "dev" / "newstest2014-fren-src.en.sgm").write_text(src)
        (tmp_path / "dev" / "newstest2014-fren-ref.fr.sgm").write_text(ref)
        fren = registry.get_problem("translate_fren_wmt8k")
        (first, *_) = fren.generate("test", str(tmp_path))
        assert first["targets"] == 'A Republican strategy & its "results"'

    def test_raw_files(self):
        ende = translate_wmt.TRANSLATE_ENDE_WMT8K
        assert [f.filename for f in ende.raw_files] == [
            "training-parallel-nc-v11.tgz",
            "training-parallel-commoncrawl.tgz",
            "training-parallel-europarl-v7.tgz",
            "dev.tgz",
        ]
        assert not any(f.extract for f in ende.raw_files)  # Read in place.
        dev = ende.raw_files[-1]
        assert dev.remote.url.endswith("/wmt19/translation-task/dev.tgz")
        assert (
            "dev/newstest2014-deen-ref.de.sgm",
            "newstest2014-deen-ref.de.sgm",
        ) in dev.provides
        deen = registry.get_problem("translate_deen_wmt8k")
        assert deen.raw_files == ende.raw_files
        enfr = [
            f.filename for f in translate_wmt.TRANSLATE_ENFR_WMT8K.raw_files
        ]
        assert enfr[-2:] == ["training-parallel-un.tgz", "dev.tgz"]


class TestTranslateEnfr:
    def test_gzip_inside_tar_and_plain_dev(self, tmp_path):
        with tarfile.open(tmp_path / "training-giga-fren.tar", "w") as t:
            _add_to_tar(
                t,
                "giga-fren.release2.fixed.en.gz",
                gzip.compress(b"One.\nTwo.\n"),
            )
            _add_to_tar(
                t,
                "giga-fren.release2.fixed.fr.gz",
                gzip.compress(b"Un.\nDeux.\n"),
            )
        un = tmp_path / "un"
        un.mkdir()
        (un / "undoc.2000.fr-en.en").write_text("Peace.\n")
        (un / "undoc.2000.fr-en.fr").write_text("Paix.\n")
        (tmp_path / "dev").mkdir()
        (tmp_path / "dev" / "newstest2013.en").write_text("Yes.\nNo.\n")
        (tmp_path / "dev" / "newstest2013.fr").write_text("Oui.\nNon.\n")
        enfr = translate_wmt.TRANSLATE_ENFR_WMT8K
        assert list(enfr.generate("train", str(tmp_path))) == [
            {"inputs": "One.", "targets": "Un."},
            {"inputs": "Two.", "targets": "Deux."},
            {"inputs": "Peace.", "targets": "Paix."},
        ]
        fren = registry.get_problem("translate_fren_wmt8k")
        assert list(fren.generate("dev", str(tmp_path))) == [
            {"inputs": "Oui.", "targets": "Yes."},
            {"inputs": "Non.", "targets": "No."},
        ]
        assert (enfr.input_space_id, enfr.target_space_id) == (3, 6)
        assert (fren.input_space_id, fren.target_space_id) == (6, 3)


def test_parse_sgml_entities():
    segments = translate_wmt.parse_sgml(
        '<doc docid="d1"><seg id=1>a &amp;amp; b &#x27;c&#x27;</seg></doc>'
    )
    assert segments == [(("d1", "1"), "a &amp; b 'c'")]
