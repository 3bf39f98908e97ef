"""MS-COCO 2014 image captioning (the paper's task 3).

Each example is one (image, caption) pair, as in T2T's `image_mscoco_tokens`
problems: an image with five captions gives five examples. Inputs are the
encoded JPEG bytes as shipped (decoded by the same 299x299 preprocessor as
ImageNet, with T2T's training augmentation); targets are the caption in the
shared 8k vocabulary. Space IMAGE -> EN_TOK, as T2T.

Raw files (cocodataset.org, 2014 release), in `tmp_dir`:
- `annotations/captions_train2014.json` and `annotations/captions_val2014.json`
  (from `annotations_trainval2014.zip`; the bare file names in `tmp_dir`
  work too): `images` with `id` / `file_name`, `annotations` with
  `image_id` / `caption`.
- the images `train2014/<file_name>` and `val2014/<file_name>`, unpacked, or
  read straight from the downloaded `train2014.zip` / `val2014.zip`.
Train is train2014 and dev is val2014 (T2T's `_test` split; its `_tune`
split carved dev out of train2014 instead). Test is Karpathy's 5000-image
test split when his `dataset_coco.json` (from `caption_datasets.zip`,
https://cs.stanford.edu/people/karpathy/deepimagesent/) is in `tmp_dir`
(images with `"split": "test"`, in that file's order, folder from their
`filepath`, captions from the COCO annotations as for dev), and otherwise
val2014 again (T2T's `_test` convention: dev is the test set). Examples
follow the order of
`images` in the JSON, and each image's captions their order in
`annotations`. Captions are stripped and their inner whitespace collapsed
(COCO captions carry stray spaces and newlines); case is kept. Images whose
file is missing are skipped with a count.

t2t-mm-datagen downloads what is missing (`raw_files`): the annotations
zip (its `annotations/captions_*` members unpacked) and the two image zips
(read in place, not unpacked).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence

import tensorflow as tf

from problems import problem as problem_lib
from problems import registry, text_features
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors, public_corpora, raw_files
from t2t_multimodel.modalities import specs as modality_specs

_LOG = logging.getLogger(__name__)

COCO_URL = "http://images.cocodataset.org"
ANNOTATIONS_ZIP = f"{COCO_URL}/annotations/annotations_trainval2014.zip"
SPLIT_FOLDERS = {problem_lib.TRAIN: "train2014", problem_lib.DEV: "val2014"}
KARPATHY_JSON = "dataset_coco.json"
# Where Karpathy's JSON may be: tmp_dir, or caption_datasets.zip unpacked.
_KARPATHY_PLACES = ("", "caption_datasets")


def read_captions(path: str) -> list[tuple[str, list[str]]]:
    """`(file_name, captions)` per image of a COCO `captions_*.json` file."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    captions: dict[int, list[str]] = collections.defaultdict(list)
    for annotation in data["annotations"]:
        caption = " ".join(annotation["caption"].split())
        if caption:
            captions[annotation["image_id"]].append(caption)
    return [
        (image["file_name"], captions[image["id"]])
        for image in data["images"]
        if captions[image["id"]]
    ]


@contextlib.contextmanager
def _image_reader(
    tmp_dir: str, folder: str
) -> Iterator[Callable[[str], bytes | None]]:
    """Yields `read(file_name) -> bytes or None` over the folder or zip."""
    image_dir = os.path.join(tmp_dir, folder)
    zip_path = os.path.join(tmp_dir, folder + ".zip")
    if os.path.isdir(image_dir) or not os.path.isfile(zip_path):

        def read_file(name: str) -> bytes | None:
            path = os.path.join(image_dir, name)
            if not os.path.isfile(path):
                return None
            with open(path, "rb") as f:
                return f.read()

        yield read_file
        return
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())

        def read_member(name: str) -> bytes | None:
            member = f"{folder}/{name}"
            return archive.read(member) if member in names else None

        yield read_member


def _annotations_path(tmp_dir: str, folder: str) -> str | None:
    name = f"captions_{folder}.json"
    for path in (
        os.path.join(tmp_dir, "annotations", name),
        os.path.join(tmp_dir, name),
    ):
        if os.path.isfile(path):
            return path
    return None


def _generator(split: str) -> problem_lib.Generator:
    folder = SPLIT_FOLDERS[split]

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        annotations = _annotations_path(tmp_dir, folder)
        if annotations is None:
            raise _missing(tmp_dir, f"annotations/captions_{folder}.json")
        images = read_captions(annotations)
        missing = 0
        with _image_reader(tmp_dir, folder) as read:
            for file_name, captions in images:
                image = read(file_name)
                if image is None:
                    missing += 1
                    continue
                for caption in captions:
                    yield {"inputs": image, "targets": caption}
        if missing == len(images) and images:
            raise _missing(tmp_dir, f"the images {folder}/*.jpg")
        if missing:
            _LOG.warning("%s: %d images missing, skipped", folder, missing)

    return generate


def _karpathy_path(tmp_dir: str) -> str | None:
    for place in _KARPATHY_PLACES:
        path = os.path.join(tmp_dir, place, KARPATHY_JSON)
        if os.path.isfile(path):
            return path
    return None


def read_karpathy_split(path: str, split: str) -> list[tuple[str, str]]:
    """`(folder, file_name)` of each image of `split` in Karpathy's JSON.

    Args:
      path: `dataset_coco.json` (`images`: `filepath` such as `val2014`,
        `filename`, `split` among train / restval / val / test).
      split: the split to list, in file order.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [
        (image["filepath"], image["filename"])
        for image in data["images"]
        if image["split"] == split
    ]


def _examples(
    tmp_dir: str, images: Sequence[tuple[str, str]]
) -> Iterator[problem_lib.Example]:
    """One example per caption of each `(folder, file_name)`, in order."""
    captions: dict[tuple[str, str], list[str]] = {}
    for folder in dict.fromkeys(folder for folder, _ in images):
        annotations = _annotations_path(tmp_dir, folder)
        if annotations is None:
            raise _missing(tmp_dir, f"annotations/captions_{folder}.json")
        for file_name, texts in read_captions(annotations):
            captions[folder, file_name] = texts
    missing = 0
    with contextlib.ExitStack() as stack:
        readers = {
            folder: stack.enter_context(_image_reader(tmp_dir, folder))
            for folder in dict.fromkeys(folder for folder, _ in images)
        }
        for folder, file_name in images:
            image = readers[folder](file_name)
            texts = captions.get((folder, file_name))
            if image is None or not texts:
                missing += 1
                continue
            for caption in texts:
                yield {"inputs": image, "targets": caption}
    if missing:
        _LOG.warning(
            "%d of %d images without file or captions, skipped",
            missing,
            len(images),
        )


def _test_generator() -> problem_lib.Generator:
    dev = _generator(problem_lib.DEV)

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        karpathy = _karpathy_path(tmp_dir)
        if karpathy is None:
            _LOG.info("no %s in %s: test is val2014", KARPATHY_JSON, tmp_dir)
            yield from dev(tmp_dir)
            return
        yield from _examples(tmp_dir, read_karpathy_split(karpathy, "test"))

    return generate


def _coco_raw_files() -> tuple[raw_files.RawFile, ...]:
    """The annotations (captions unpacked) and the image zips (read as is)."""
    captions = tuple(
        (f"annotations/captions_{f}.json", f"captions_{f}.json")
        for f in SPLIT_FOLDERS.values()
    )
    return (
        raw_files.RawFile(
            public_corpora.COCO_ANNOTATIONS_2014,
            extract=True,
            members=("annotations/captions_",),
            provides=captions,
        ),
        raw_files.RawFile(
            public_corpora.COCO_TRAIN_2014,
            provides=("train2014/COCO_train2014_*.jpg",),
        ),
        raw_files.RawFile(
            public_corpora.COCO_VAL_2014,
            provides=("val2014/COCO_val2014_*.jpg",),
        ),
    )


HELP = (
    "Put MS-COCO 2014 in tmp_dir: annotations/captions_train2014.json and "
    f"annotations/captions_val2014.json (from {ANNOTATIONS_ZIP}), and the "
    "images train2014/COCO_train2014_*.jpg and val2014/COCO_val2014_*.jpg "
    f"({COCO_URL}/zips/train2014.zip and {COCO_URL}/zips/val2014.zip, "
    "unpacked or left as the .zip files). For Karpathy's test split, add "
    f"{KARPATHY_JSON} (optional; without it test is val2014)."
)


def _missing(tmp_dir: str, what: str) -> problem_lib.MissingDataError:
    return problem_lib.MissingDataError(
        f"MS-COCO: {what} not found in {tmp_dir}.\n{HELP}"
    )


def mscoco_problem(
    name: str = "caption_mscoco8k",
    image_size: tuple[int, int] = preprocessors.IMAGE_SIZE,
) -> problem_lib.Problem:
    """The captioning problem with images resized to `image_size`."""
    return problem_lib.Problem(
        name=name,
        generators={
            **{split: _generator(split) for split in SPLIT_FOLDERS},
            problem_lib.TEST: _test_generator(),
        },
        features={
            "inputs": features_lib.Feature(
                tf.string, (), modality=modality_specs.IMAGE
            ),
            "targets": text_features.TEXT,
        },
        preprocessors=(preprocessors.image_feature(image_size),),
        metrics=("bleu",),
        input_space_id=features_lib.SpaceID.IMAGE,
        target_space_id=features_lib.SpaceID.EN_TOK,
        raw_files_help=HELP,
        num_shards=100,
        raw_files=_coco_raw_files(),
    )


CAPTION_MSCOCO8K = registry.register(mscoco_problem())
