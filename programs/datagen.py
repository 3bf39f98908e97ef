"""t2t-mm-datagen: raw files -> shared vocabulary + sharded TFRecords.

  t2t-mm-datagen --problem=NAME[,NAME...] --data_dir=D --tmp_dir=T
      [--num_shards=N] [--mirror=URL] [--nodownload]
  t2t-mm-datagen --problem=NAME --data_dir=D --source=tfds
      [--tfds_data_dir=TFDS_DIR] [--download [--tfds_manual_dir=M]]
  t2t-mm-datagen --list_problems [--verbose]

Writes D/NAME-train-000NN-of-000MM, D/NAME-dev-00000-of-00001 (and
D/NAME-test-... where the corpus has a test split and its files are in T),
their .meta.json files and the shared vocabulary. Reruns skip complete
shards. With --source=raw (the default) the public raw files that are not in
T yet are downloaded there first (progress bars; resumed if cut; verified
against published checksums) and unpacked where needed; files already in T
are used as they are, without network. --mirror (or $T2T_MM_MIRROR) fetches
them from a mirror holding each file under its origin path; --nodownload
never touches the network. ImageNet and the Penn Treebank are licensed: put
their files in T by hand (the error says how). With --source=tfds, --download
prepares the TFDS dataset with TFDS's own download_and_prepare.

`generate_data` (SPEC.md section 1) is the logic: for the chosen
problems and mixtures it builds the shared subword vocabulary from the TRAIN
text of all of them (the paper's single vocabulary, section 2.1) unless the
file is already in `data_dir`, then writes every split of every problem with
`t2t_multimodel.data.tfrecord.write_split`: train into `num_shards` shards,
the other splits into one. The test split is optional: when its raw
files are absent it is skipped with a warning. Reruns reuse the vocabulary
and skip complete shards. With `download=True` it first fetches every
problem's missing `raw_files` (`t2t_multimodel.data.raw_files.prepare`).
Keyword-only arguments: `main` and tests call it alike.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence

import tqdm
from absl import flags

from problems import problem as problem_lib
from problems import registry
from problems.paper import tfds_sources
from programs import cli
from t2t_multimodel import errors
from t2t_multimodel.data import mirrors, raw_files, tfrecord
from t2t_multimodel.data import vocabulary as vocabulary_lib

_LOG = logging.getLogger(__name__)


def _train_texts(
    problems: Sequence[problem_lib.Problem], vocab_file: str, tmp_dir: str
) -> Iterator[str]:
    """The train-split text of every feature that uses `vocab_file`."""
    for problem in problems:
        keys = [
            k for k, f in problem.features.items() if f.vocabulary == vocab_file
        ]
        if not keys or problem_lib.TRAIN not in problem.generators:
            continue
        for example in problem.generate(problem_lib.TRAIN, tmp_dir):
            for key in keys:
                yield example[key]


def load_or_build_vocabularies(
    problems: Sequence[problem_lib.Problem],
    data_dir: str,
    tmp_dir: str,
    vocab_size: int = 8192,
    *,
    verbose: bool = True,
) -> dict[str, vocabulary_lib.Vocabulary]:
    """Every vocabulary file `problems` use: loaded if present, else built.

    A missing file is built from the train text of all of `problems` that
    name it. An existing file is reused as it is, even if it was built from
    other problems (as T2T does), so that shards stay compatible.
    """
    vocabularies = {}
    names = sorted(set().union(*(p.text_vocabularies for p in problems)))
    for name in names:
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            vocabularies[name] = vocabulary_lib.Vocabulary.load(path)
            if verbose:
                print(f"Reusing vocabulary {path}", file=sys.stderr)
            continue
        if verbose:
            print(f"Building vocabulary {path} ...", file=sys.stderr)
        vocabularies[name] = vocabulary_lib.build_vocabulary(
            _train_texts(problems, name, tmp_dir), path, vocab_size
        )
    return vocabularies


def _split_shards(
    problem: problem_lib.Problem, split: str, num_shards: int | None
) -> int:
    if split != problem_lib.TRAIN:
        return 1
    return num_shards or problem.num_shards


def _summary(
    results: dict[str, dict[str, tfrecord.SplitStats]],
    vocabularies: dict[str, vocabulary_lib.Vocabulary],
    split_seconds: dict[tuple[str, str], float],
    seconds: float,
) -> str:
    lines = [
        f"{'problem':<32} {'split':<6} {'examples':>9} {'tokens':>11} "
        f"{'seconds':>8}"
    ]
    for name, splits in results.items():
        for split, stats in splits.items():
            tokens = sum(stats.num_tokens.values())
            lines.append(
                f"{name:<32} {split:<6} {stats.num_examples:>9} {tokens:>11} "
                f"{split_seconds[name, split]:>8.1f}  "
                f"({len(stats.shards_written)} shards written, "
                f"{len(stats.shards_skipped)} kept)"
            )
    for name, vocab in vocabularies.items():
        lines.append(f"vocabulary {name}: {vocab.vocab_size} ids")
    lines.append(f"done in {seconds:.1f} s")
    return "\n".join(lines)


def _from_tfds(
    problem: problem_lib.Problem,
    tfds_data_dir: str | None,
    download: bool,
    tfds_manual_dir: str | None,
) -> problem_lib.Problem:
    if not tfds_sources.has_source(problem.name):
        print(
            f"{problem.name} has no TFDS source: reading its raw files",
            file=sys.stderr,
        )
        return problem
    return tfds_sources.with_tfds_source(
        problem, tfds_data_dir, download=download, manual_dir=tfds_manual_dir
    )


def download_raw_files(
    problems: Sequence[problem_lib.Problem],
    tmp_dir: str,
    *,
    mirror: str | None = None,
    verbose: bool = True,
) -> None:
    """Fetches the problems' missing public raw files into `tmp_dir`.

    Problems whose corpus needs a licence (`manual_download`) are checked
    first, so that a missing ImageNet stops the run before hours of other
    downloads: their train split must yield an example.

    Raises:
      problem_lib.MissingDataError: a manual corpus is not in `tmp_dir`.
      download.DownloadError, download.ChecksumMismatchError,
      archives.ArchiveError: see `raw_files.prepare`.
    """
    for problem in problems:
        if problem.manual_download and not problem.raw_files:
            examples = problem.generate(problem_lib.TRAIN, tmp_dir)
            next(iter(examples), None)  # Raises with what to put where.
    for problem in problems:
        if not problem.raw_files:
            continue
        todo = raw_files.missing(problem.raw_files, tmp_dir)
        if verbose and todo:
            names = ", ".join(f.filename for f in todo)
            print(f"{problem.name}: downloading {names}", file=sys.stderr)
        raw_files.prepare(
            problem.raw_files, tmp_dir, mirror=mirror, progress=verbose
        )


def _split_examples(
    problem: problem_lib.Problem, split: str, tmp_dir: str
) -> Iterable[problem_lib.Example] | None:
    """The split's examples; None for an optional split without files."""
    examples = iter(problem.generate(split, tmp_dir))
    if split not in problem_lib.OPTIONAL_SPLITS:
        return examples
    try:
        first = next(examples)
    except StopIteration:
        return iter(())
    except problem_lib.MissingDataError as e:
        _LOG.warning("%s: no %s split written: %s", problem.name, split, e)
        print(
            f"{problem.name}: its {split} files are not in {tmp_dir}: no "
            f"{split} split written",
            file=sys.stderr,
        )
        return None
    return itertools.chain([first], examples)


def generate_data(
    *,
    problem_names: str | Sequence[str],
    data_dir: str,
    tmp_dir: str,
    num_shards: int | None = None,
    vocab_size: int = 8192,
    verbose: bool = True,
    source: str = "raw",
    tfds_data_dir: str | None = None,
    download: bool = False,
    mirror: str | None = None,
    tfds_manual_dir: str | None = None,
) -> dict[str, dict[str, tfrecord.SplitStats]]:
    """Generates the vocabulary and the TFRecord shards of problems.

    Args:
      problem_names: registered problem and mixture names (a list, or one
        comma-separated string); mixtures expand to their problems.
      data_dir: output directory (shards, metadata, vocabulary).
      tmp_dir: where the raw files are (see each problem's `raw_files_help`).
      num_shards: train shards per problem (default: `problem.num_shards`);
        other splits get one shard.
      vocab_size: size bound of a vocabulary that has to be built.
      verbose: show progress bars and print the summary.
      source: `"raw"` reads the raw files in `tmp_dir`; `"tfds"` reads the
        prepared TensorFlow Datasets of `problems.tfds_sources.SOURCES`
        (problems without a TFDS builder, such as parsing, still read their
        raw files, with a warning).
      tfds_data_dir: the TFDS data_dir (None: TFDS's default).
      download: with `source="raw"`, fetch the problems' missing public raw
        files into `tmp_dir` first (`download_raw_files`); with
        `source="tfds"`, prepare unprepared TFDS datasets with TFDS's own
        `download_and_prepare`.
      mirror: with `download` and raw files, the mirror to fetch from (the
        program resolves `--mirror` / `$T2T_MM_MIRROR`).
      tfds_manual_dir: with `download` and TFDS, TFDS's manual_dir.

    Returns:
      problem name -> split -> `tfrecord.SplitStats`.

    Raises:
      registry.UnknownNameError: an unknown name (lists the nearest names).
      errors.NotWritableError: `data_dir` cannot be written (read-only, a
        file or under one, full), checked before any work; or `tmp_dir`
        does not exist and cannot be created.
      problem_lib.MissingDataError: raw files are missing (the problem's
        message says which files go where), or a TFDS dataset is not
        prepared (the message gives the `tfds build` command).
      download.DownloadError: a download failed (see `raw_files.prepare`).
    """
    start = time.monotonic()
    problems = registry.resolve(problem_names)
    if not problems:
        raise ValueError("no problem given")
    # Before any download, vocabulary or shard (minutes to hours of work).
    errors.ensure_writable_dir(data_dir)
    if source == "tfds":
        problems = [
            _from_tfds(p, tfds_data_dir, download, tfds_manual_dir)
            for p in problems
        ]
    elif source != "raw":
        raise ValueError(f"source must be 'raw' or 'tfds', not {source!r}")
    try:
        os.makedirs(tmp_dir, exist_ok=True)
    except OSError as e:
        raise errors.NotWritableError(
            f"cannot create tmp_dir {tmp_dir}: {e.strerror or e}. Pass the "
            "directory that holds the raw files."
        ) from None
    if download and source == "raw":
        download_raw_files(problems, tmp_dir, mirror=mirror, verbose=verbose)
    vocabularies = load_or_build_vocabularies(
        problems, data_dir, tmp_dir, vocab_size, verbose=verbose
    )
    results: dict[str, dict[str, tfrecord.SplitStats]] = {}
    split_seconds = {}
    for problem in problems:
        results[problem.name] = {}
        for split in problem.generators:
            examples = _split_examples(problem, split, tmp_dir)
            if examples is None:
                continue
            split_start = time.monotonic()
            bar = tqdm.tqdm(
                desc=f"{problem.name} {split}",
                unit=" examples",
                disable=not verbose,
                file=sys.stderr,
            )
            with bar:
                results[problem.name][split] = tfrecord.write_split(
                    examples,
                    problem.features,
                    vocabularies,
                    data_dir,
                    problem.name,
                    split,
                    _split_shards(problem, split, num_shards),
                    progress=bar.update,
                )
            split_seconds[problem.name, split] = time.monotonic() - split_start
    if verbose:
        total = time.monotonic() - start
        print(_summary(results, vocabularies, split_seconds, total))
    return results


def _download_summary(problem: problem_lib.Problem) -> str:
    if problem.raw_files:
        files = {f.filename: f.remote.size for f in problem.raw_files}
        known = sum(size or 0 for size in files.values())
        size = f", {known / 1e9:.1f} GB" if known else ""
        return f"download: {len(files)} files{size}"
    if problem.manual_download:
        return "download: by hand (licensed corpus)"
    return "download: none (local or generated data)"


def describe(name: str) -> str:
    """One `--list_problems --verbose` line: splits and downloads, or rates.

    Test splits are marked optional: written only when their files exist.
    """
    item = registry.get(name)
    if isinstance(item, registry.Mixture):
        parts = ", ".join(f"{n} {rate:g}" for n, rate in item.problem_rates)
        return f"{name:<32} mixture: {parts}"
    splits = ", ".join(
        f"{s} (optional)" if s in problem_lib.OPTIONAL_SPLITS else s
        for s in item.generators
    )
    return f"{name:<32} splits: {splits}; {_download_summary(item)}"


FLAGS = flags.FLAGS


def define_flags() -> None:
    """datagen's flags (defined when the program runs, not on import)."""
    flags.DEFINE_list("problem", None, "Problem or mixture names (comma list).")
    flags.DEFINE_string("data_dir", None, "Output directory for TFRecords.")
    flags.DEFINE_string("tmp_dir", None, "Directory holding the raw files.")
    flags.DEFINE_integer(
        "num_shards", None, "Train shards per problem (default: the problem's)."
    )
    flags.DEFINE_enum(
        "source",
        "raw",
        ["raw", "tfds"],
        "Raw files in tmp_dir, or prepared TFDS.",
    )
    flags.DEFINE_string(
        "tfds_data_dir", None, "TFDS data_dir (default: TFDS's own default)."
    )
    flags.DEFINE_bool(
        "list_problems", False, "Print every problem and mixture, one a line."
    )
    flags.DEFINE_bool(
        "verbose",
        False,
        "With --list_problems: each problem's splits and downloads, each "
        "mixture's problems and rates.",
    )
    flags.DEFINE_bool(
        "download",
        None,
        "Raw source: fetch the public raw files missing from --tmp_dir "
        "(default: yes; --nodownload: never use the network). TFDS source: "
        "prepare an unprepared dataset with TFDS's download_and_prepare "
        "(default: no).",
    )
    flags.DEFINE_string(
        "mirror",
        None,
        "Fetch raw files from this mirror (scheme://host[:port][/path], "
        f"files under their origin paths); default: ${mirrors.MIRROR_ENV}.",
    )
    flags.DEFINE_string(
        "tfds_manual_dir",
        None,
        "With --source=tfds --download: TFDS's manual_dir (ImageNet's tars).",
    )


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    import problems  # noqa: F401  (registers every problem and mixture)

    if FLAGS.list_problems:
        for name in registry.list_problems() + registry.list_mixtures():
            print(describe(name) if FLAGS.verbose else name)
        return 0
    required = ["problem", "data_dir"]
    if FLAGS.source == "raw":
        required.append("tmp_dir")
    missing = [f for f in required if not FLAGS[f].value]
    if missing:
        raise errors.UserError(
            "missing " + ", ".join(f"--{f}" for f in missing) + "; see --help"
        )
    download = FLAGS.download
    if download is None:  # Raw files are fetched; TFDS only when asked.
        download = FLAGS.source == "raw"
    # The environment is read here, never in the library (STYLE.md 9).
    mirror = mirrors.resolve_mirror(FLAGS.mirror, os.environ)
    generate_data(
        problem_names=FLAGS.problem,
        data_dir=FLAGS.data_dir,
        # TFDS problems ignore tmp_dir; ones without a builder read it.
        tmp_dir=FLAGS.tmp_dir or FLAGS.data_dir,
        num_shards=FLAGS.num_shards,
        source=FLAGS.source,
        tfds_data_dir=FLAGS.tfds_data_dir,
        download=download,
        mirror=mirror,
        tfds_manual_dir=FLAGS.tfds_manual_dir,
    )
    return 0


def run() -> None:
    """The console entry point."""
    cli.start(
        main, prog="t2t-mm-datagen", doc=__doc__, define_flags=define_flags
    )
