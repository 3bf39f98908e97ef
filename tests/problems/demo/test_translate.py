"""Tests of the demo translation problems (Ding EN-DE, gettext EN-FR)."""

from __future__ import annotations

import array
import os
import struct

import pytest

from problems import problem as problem_lib
from problems import registry
from problems.demo import translate as demo_translate

DING_LINE = (
    "Abendessen {n}; Nachtmahl {n} [Ös.] | Abendessen {pl} | "
    "Das Abendessen {n} hat mir (sehr) geschmeckt. | Wollen wir essen? | "
    "Ich habe Hunger; Ich bin hungrig. :: "
    "supper; evening meal | suppers | I enjoyed my supper [coll.] (a lot). | "
    "Shall we eat now? | I am very hungry; I am starving."
)


class TestDingParse:
    def test_line_with_sub_entries_and_tags(self):
        # Sub-entries 1 and 2 are not sentences; 5 keeps its first
        # alternative, which has no final punctuation.
        assert demo_translate.parse_ding_line(DING_LINE) == [
            ("I enjoyed my supper.", "Das Abendessen hat mir geschmeckt."),
            ("Shall we eat now?", "Wollen wir essen?"),
        ]

    def test_short_english_is_dropped(self):
        line = DING_LINE.replace("Shall we eat now?", "Shall we eat?")
        pairs = demo_translate.parse_ding_line(line)
        assert [en for en, _ in pairs] == ["I enjoyed my supper."]

    def test_clean_side(self):
        clean = demo_translate.clean_ding_side
        assert clean("Er ist {m} (sehr) müde [ugs.]; Er schläft.") == (
            "Er ist müde"
        )
        assert clean("A <alt>  b  {f}") == "A b"

    def test_mismatched_counts_comments_and_slashes_are_dropped(self):
        parse = demo_translate.parse_ding_line
        assert parse("# Version :: devel") == []
        assert parse("Das ist gut. | Ja. :: That is very good.") == []
        assert parse("Wir gehen. :: We go / walk home now.") == []
        assert parse("Wir gehen jetzt. :: We go now.") == []  # 3 words
        assert parse("Geht es? :: Is it going well?\n") == [
            ("Is it going well?", "Geht es?")
        ]


class TestSplit:
    def test_is_dev_pinned_values(self):
        # SHA-1 prefix mod 100: 31, 89, 2, 3 (computed once and pinned).
        sentences = ("I enjoyed my supper.", "a", "sentence 5.", "sentence 10.")
        assert [demo_translate.is_dev(s) for s in sentences] == [
            False,
            False,
            True,
            True,
        ]
        assert not demo_translate.is_dev("sentence 10.", dev_percent=3)
        assert demo_translate.is_dev("sentence 10.", dev_percent=4)

    def test_dev_fraction(self):
        dev = sum(demo_translate.is_dev(f"sentence {i}.") for i in range(4000))
        assert 150 < dev < 250  # ~5% of 4000.


def _write_ding(path, pairs):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Version :: test\n")
        for en, de in pairs:
            f.write(f"Wort {{n}} | {de} :: word | {en}\n")


class TestDingProblem:
    def test_small_file_splits_and_reverse(self, tmp_path):
        pairs = [
            (f"This is sentence number {i}.", f"Das ist Satz Nummer {i}.")
            for i in range(60)
        ]
        path = str(tmp_path / "de-en")
        _write_ding(path, pairs)
        problem = demo_translate.ding_problem(path, name="t_ende")
        train = list(problem.generate("train", "/unused"))
        dev = list(problem.generate("dev", "/unused"))
        got = {(e["inputs"], e["targets"]) for e in train + dev}
        assert got == set(pairs)
        assert len(train) + len(dev) == 60
        assert {e["inputs"] for e in dev} == {
            en for en, _ in pairs if demo_translate.is_dev(en)
        }
        assert not {e["inputs"] for e in train} & {e["inputs"] for e in dev}
        reverse = problem_lib.reverse(problem, name="t_deen")
        assert next(iter(reverse.generate("train", ""))) == {
            "inputs": train[0]["targets"],
            "targets": train[0]["inputs"],
        }
        assert reverse.input_space_id == 8 and reverse.target_space_id == 3

    def test_missing_file_names_the_package(self, tmp_path):
        problem = demo_translate.ding_problem(str(tmp_path / "nope"))
        with pytest.raises(problem_lib.MissingDataError, match="trans-de-en"):
            next(iter(problem.generate("train", "")))


def write_mo(path, messages: dict[str, str]) -> None:
    """Writes a GNU .mo catalog (as Python's Tools/i18n/msgfmt.py does)."""
    keys = sorted(messages)
    ids = strs = b""
    entries = []
    for key in keys:
        k, v = key.encode(), messages[key].encode()
        entries.append((len(ids), len(k), len(strs), len(v)))
        ids += k + b"\0"
        strs += v + b"\0"
    key_start = 7 * 4 + 16 * len(keys)
    value_start = key_start + len(ids)
    offsets = []
    for o1, l1, _, _ in entries:
        offsets += [l1, o1 + key_start]
    for _, _, o2, l2 in entries:
        offsets += [l2, o2 + value_start]
    header = struct.pack(
        "Iiiiiii", 0x950412DE, 0, len(keys), 28, 28 + 8 * len(keys), 0, 0
    )
    with open(path, "wb") as f:
        f.write(header + array.array("i", offsets).tobytes() + ids + strs)


MO_MESSAGES = {
    "": "Content-Type: text/plain; charset=UTF-8\n"
    "Plural-Forms: nplurals=2; plural=(n > 1);\n",
    "Open the file in  the editor.": "Ouvrir le fichier dans l'éditeur.",
    "menu\x04Close all the open windows.": "Fermer\u00a0toutes les fenêtres.",
    "Cannot open %s for reading.": "Impossible d'ouvrir %s.",
    "Use <b>bold</b> text here.": "Utiliser du texte <b>gras</b> ici.",
    "Save the _file now please.": "_Enregistrer le fichier.",
    "Too short.": "Trop court.",
    "ends without a period": "se termine sans point",
    "one file was removed.\0many files were removed.": "un\0des",
    "This is left untranslated.": "This is left untranslated.",
}


class TestGettext:
    def test_keep_message(self):
        keep = demo_translate.keep_message
        assert keep("Open the file now.", "Ouvrir le fichier.")
        assert not keep("Open %s now please.", "Ouvrir %s.")
        assert not keep("Open {0} now please.", "Ouvrir {0}.")
        assert not keep("Use the --force option.", "Utiliser --force.")
        assert not keep("See https://x.org for more.", "Voir.")
        assert not keep("Open the file now.", "Open the file now.")
        assert not keep("1 file was opened here.", "1 fichier.")

    def test_read_mo_pairs(self, tmp_path):
        path = str(tmp_path / "x.mo")
        write_mo(path, MO_MESSAGES)
        assert demo_translate.read_mo_pairs(path) == [
            ("Close all the open windows.", "Fermer toutes les fenêtres."),
            (
                "Open the file in the editor.",
                "Ouvrir le fichier dans l'éditeur.",
            ),
        ]

    def test_problem_first_catalog_wins_and_missing_package(self, tmp_path):
        write_mo(str(tmp_path / "a.mo"), MO_MESSAGES)
        write_mo(
            str(tmp_path / "b.mo"),
            {
                "": "Content-Type: text/plain; charset=UTF-8\n",
                "Open the file in the editor.": "Autre traduction.",
                "Print the version and exit.": "Afficher la version.",
            },
        )
        catalogs = (("pkg-a", "a.mo"), ("pkg-b", "b.mo"))
        problem = demo_translate.gettext_problem(str(tmp_path), catalogs)
        examples = [
            (e["inputs"], e["targets"])
            for split in ("train", "dev")
            for e in problem.generate(split, "")
        ]
        assert sorted(examples) == [
            ("Close all the open windows.", "Fermer toutes les fenêtres."),
            (
                "Open the file in the editor.",
                "Ouvrir le fichier dans l'éditeur.",
            ),
            ("Print the version and exit.", "Afficher la version."),
        ]
        missing = demo_translate.gettext_problem(
            str(tmp_path), (("pkg-a", "a.mo"), ("pkg-zz", "zz.mo"))
        )
        with pytest.raises(problem_lib.MissingDataError, match="pkg-zz"):
            next(iter(missing.generate("train", "")))


_HAS_DING = os.path.exists(demo_translate.DING_PATH)
_HAS_CATALOGS = all(
    os.path.exists(os.path.join(demo_translate.LOCALE_DIR, name))
    for _, name in demo_translate.GETTEXT_CATALOGS
)


@pytest.mark.skipif(not _HAS_DING, reason="apt-get install trans-de-en")
class TestRealDing:
    def test_counts_first_examples_and_disjoint_splits(self):
        problem = registry.get_problem("demo_translate_ende_ding")
        train = list(problem.generate("train", ""))
        dev = list(problem.generate("dev", ""))
        assert (len(train), len(dev)) == (15904, 798)
        assert train[0] == {
            "inputs": "I’ve made one or two modifications to the original "
            "design.",
            "targets": "Ich habe am ursprünglichen Entwurf ein paar "
            "Änderungen vorgenommen.",
        }
        assert dev[0] == {
            "inputs": "What's on the schedule for today?",
            "targets": "Was steht für heute auf dem Programm?",
        }
        assert not {e["inputs"] for e in train} & {e["inputs"] for e in dev}
        deen = registry.get_problem("demo_translate_deen_ding")
        assert next(iter(deen.generate("dev", ""))) == {
            "inputs": dev[0]["targets"],
            "targets": dev[0]["inputs"],
        }


@pytest.mark.skipif(not _HAS_CATALOGS, reason="demo gettext packages missing")
class TestRealGettext:
    def test_counts_and_disjoint_splits(self):
        problem = registry.get_problem("demo_translate_enfr_gettext")
        train = list(problem.generate("train", ""))
        dev = list(problem.generate("dev", ""))
        # Debian 12 catalogs: 3,522 / 193; the range allows point releases.
        assert 3000 < len(train) < 4500 and 120 < len(dev) < 300
        assert not {e["inputs"] for e in train} & {e["inputs"] for e in dev}
        for example in train + dev:
            assert demo_translate.keep_message(
                example["inputs"], example["targets"]
            )
