"""ILSVRC-2012 (ImageNet) classification, 1000 classes (the paper's task 2).

Examples are the encoded image bytes as shipped plus an int label; the
preprocessor decodes them to 299x299 RGB in [0, 1] (paper section 2.5 / T2T;
configurable with `imagenet_problem(image_size=...)`), and in training 80% of
images are resized to 360x360, randomly cropped to 299x299 and flipped (T2T).

Labels: **0-based index of the class's WordNet id (wnid) in the sorted list
of the 1000 ILSVRC-2012 wnids** (`n01440764` -> 0, ..., `n15075141` -> 999).

Raw layouts read from `tmp_dir` (the first one found wins):
1. TFRecords of tensorflow/models `inception/data/build_imagenet_data.py`:
   `train-00000-of-01024`..., `validation-00000-of-00128`..., features
   `image/encoded` and `image/class/label`. **Label offset: that script
   numbers the classes 1..1000 in the same sorted-wnid order and reserves 0
   for "background", so label = `image/class/label` - 1.** A label outside
   1..1000 raises.
2. The ILSVRC-2012 release, unpacked under `tmp_dir` or under Kaggle's
   `tmp_dir/ILSVRC/Data/CLS-LOC/`:
   - train: `train/nXXXXXXXX/*.JPEG` (one folder per wnid).
   - dev: `val/ILSVRC2012_val_000NNNNN.JPEG`, labelled by one of
     a. Kaggle's `LOC_val_solution.csv` (`ImageId,PredictionString`, the
        first token of PredictionString is the wnid);
     b. tensorflow/models' `imagenet_2012_validation_synset_labels.txt`
        (line i = wnid of image i);
     c. the devkit: `ILSVRC2012_devkit_t12/data/
        ILSVRC2012_validation_ground_truth.txt` (line i = the
        ILSVRC2012_ID, 1..1000, of image i). Those ids follow the devkit's
        `meta.mat` order, NOT sorted-wnid order: they are mapped to wnids
        through `ILSVRC2012_devkit_t12/data/meta.mat` (read with scipy) and
        then to the sorted-wnid label;
     or `val/nXXXXXXXX/*.JPEG` (validation already sorted into folders).
   The sorted wnid list comes from `LOC_synset_mapping.txt` (Kaggle),
   `imagenet_lsvrc_2015_synsets.txt` (tensorflow/models), the devkit's
   `meta.mat`, or the train folder names, in that order; a list that is not
   1000 long is used with a warning (for subsets).
Train examples are shuffled once with a fixed seed (as build_imagenet_data
does), because shards written in class order would mix poorly. Image bytes
are stored as shipped: `tf.io.decode_image` in the preprocessor reads the
few CMYK JPEGs and the PNG saved as `.JPEG` that build_imagenet_data.py had
to convert for the TF of its day.
T2T's joint recipe weighted ImageNet's loss by 0.7 (multimodel_facts.md 5.2);
the paper uses the same hyperparameters for every task, so the default here
is 1.0 (`imagenet_problem(loss_multiplier=0.7)` gives T2T's value).
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import random
from collections.abc import Iterator

import tensorflow as tf

from problems import problem as problem_lib
from problems import registry
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors, public_corpora
from t2t_multimodel.modalities import specs as modality_specs

_LOG = logging.getLogger(__name__)

NUM_CLASSES = 1000
# build_imagenet_data.py numbers classes 1..1000; 0 is "background".
TFRECORD_LABEL_OFFSET = 1
SHUFFLE_SEED = 12345
DEVKIT_DATA = os.path.join("ILSVRC2012_devkit_t12", "data")
KAGGLE_ROOT = os.path.join("ILSVRC", "Data", "CLS-LOC")
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")


def _roots(tmp_dir: str) -> list[str]:
    return [tmp_dir, os.path.join(tmp_dir, KAGGLE_ROOT)]


def _find(tmp_dir: str, name: str) -> str | None:
    for path in (
        os.path.join(tmp_dir, name),
        os.path.join(tmp_dir, DEVKIT_DATA, name),
    ):
        if os.path.isfile(path):
            return path
    return None


def _images(folder: str) -> list[str]:
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS)
    )


def _wnid_folders(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(
        d
        for d in os.listdir(folder)
        if d.startswith("n") and os.path.isdir(os.path.join(folder, d))
    )


def read_devkit_meta(path: str) -> dict[int, str]:
    """ILSVRC2012_ID (1..1000) -> wnid from the devkit's `meta.mat`."""
    try:
        from scipy import io as scipy_io  # Only this file format needs it.
    except ImportError as e:
        raise ImportError(
            f"reading {path} needs scipy (`pip install scipy`); or put "
            "Kaggle's LOC_val_solution.csv or tensorflow/models' "
            "imagenet_2012_validation_synset_labels.txt in tmp_dir instead"
        ) from e
    synsets = scipy_io.loadmat(path, squeeze_me=True)["synsets"]
    ids = [int(i) for i in synsets["ILSVRC2012_ID"]]
    wnids = [str(w) for w in synsets["WNID"]]
    # Leaf synsets (the 1000 classes) have ids 1..1000; the rest are parents.
    return {i: w for i, w in zip(ids, wnids) if 1 <= i <= NUM_CLASSES}


def load_wnids(tmp_dir: str) -> list[str]:
    """The sorted class wnids; label `i` is `load_wnids(tmp_dir)[i]`."""
    wnids: list[str] = []
    if path := _find(tmp_dir, "LOC_synset_mapping.txt"):
        with open(path) as f:
            wnids = [line.split()[0] for line in f if line.strip()]
    elif path := _find(tmp_dir, "imagenet_lsvrc_2015_synsets.txt"):
        with open(path) as f:
            wnids = [line.strip() for line in f if line.strip()]
    elif path := _find(tmp_dir, "meta.mat"):
        wnids = list(read_devkit_meta(path).values())
    else:
        for root in _roots(tmp_dir):  # Folder names, train before val.
            for split_dir in ("train", "val"):
                wnids = wnids or _wnid_folders(os.path.join(root, split_dir))
    if not wnids:
        raise _missing(tmp_dir, "the class list (wnids)")
    if len(wnids) != NUM_CLASSES:
        _LOG.warning("%d classes found, not %d", len(wnids), NUM_CLASSES)
    return sorted(wnids)


def _tfrecord_files(tmp_dir: str, prefix: str) -> list[str]:
    return sorted(glob.glob(os.path.join(tmp_dir, f"{prefix}-*-of-*")))


def read_tfrecords(paths: list[str]) -> Iterator[problem_lib.Example]:
    """Examples from build_imagenet_data.py TFRecords, labels made 0-based."""
    for record in tf.data.TFRecordDataset(paths):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature
        label = feature["image/class/label"].int64_list.value[0]
        if not 1 <= label <= NUM_CLASSES:
            raise ValueError(
                f"image/class/label {label} is outside 1..{NUM_CLASSES} "
                "(build_imagenet_data.py numbers classes from 1)"
            )
        yield {
            "inputs": feature["image/encoded"].bytes_list.value[0],
            "targets": label - TFRECORD_LABEL_OFFSET,
        }


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _labelled_folders(folder: str, wnids: list[str]) -> list[tuple[str, int]]:
    index = {w: i for i, w in enumerate(wnids)}
    items = []
    for wnid in _wnid_folders(folder):
        if wnid not in index:
            raise ValueError(f"{folder}/{wnid} is not in the class list")
        items += [(p, index[wnid]) for p in _images(os.path.join(folder, wnid))]
    return items


def _val_wnids_by_image(tmp_dir: str) -> dict[str, str] | None:
    """Validation image id (`ILSVRC2012_val_00000001`) -> wnid, if known."""
    if path := _find(tmp_dir, "LOC_val_solution.csv"):
        with open(path, newline="") as f:
            rows = csv.DictReader(f)
            return {
                r["ImageId"]: r["PredictionString"].split()[0] for r in rows
            }
    ids: list[str]
    if path := _find(tmp_dir, "imagenet_2012_validation_synset_labels.txt"):
        with open(path) as f:
            ids = [line.strip() for line in f if line.strip()]
    elif path := _find(tmp_dir, "ILSVRC2012_validation_ground_truth.txt"):
        meta = _find(tmp_dir, "meta.mat")
        if meta is None:
            raise _missing(tmp_dir, f"{DEVKIT_DATA}/meta.mat (next to {path})")
        id_to_wnid = read_devkit_meta(meta)
        with open(path) as f:
            ids = [id_to_wnid[int(line)] for line in f if line.strip()]
    else:
        return None
    return {f"ILSVRC2012_val_{i + 1:08d}": wnid for i, wnid in enumerate(ids)}


def _val_items(tmp_dir: str, val_dir: str) -> list[tuple[str, int]]:
    wnids = load_wnids(tmp_dir)
    if _wnid_folders(val_dir):
        return _labelled_folders(val_dir, wnids)
    by_image = _val_wnids_by_image(tmp_dir)
    if by_image is None:
        raise _missing(tmp_dir, "the validation labels")
    index = {w: i for i, w in enumerate(wnids)}
    items = []
    for path in _images(val_dir):
        image_id = os.path.splitext(os.path.basename(path))[0]
        if image_id not in by_image:
            raise ValueError(f"no label for {path}")
        items.append((path, index[by_image[image_id]]))
    return items


def _generator(split: str) -> problem_lib.Generator:
    tf_prefix, folder = {
        problem_lib.TRAIN: ("train", "train"),
        problem_lib.DEV: ("validation", "val"),
    }[split]

    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        if paths := _tfrecord_files(tmp_dir, tf_prefix):
            yield from read_tfrecords(paths)
            return
        dirs = [os.path.join(r, folder) for r in _roots(tmp_dir)]
        image_dir = next((d for d in dirs if os.path.isdir(d)), None)
        if image_dir is None:
            raise _missing(tmp_dir, f"{folder}/")
        if split == problem_lib.TRAIN:
            items = _labelled_folders(image_dir, load_wnids(tmp_dir))
            random.Random(SHUFFLE_SEED).shuffle(items)
        else:
            items = _val_items(tmp_dir, image_dir)
        for path, label in items:
            yield {"inputs": _read_bytes(path), "targets": label}

    return generate


HELP = (
    "Put ILSVRC-2012 in tmp_dir (https://image-net.org/challenges/LSVRC/2012/"
    ", registration required; or Kaggle's copy, "
    "https://www.kaggle.com/c/imagenet-object-localization-challenge, "
    "unpacked as ILSVRC/Data/CLS-LOC/...), as either\n"
    "  train/nXXXXXXXX/*.JPEG (ILSVRC2012_img_train.tar and its per-class "
    "tars unpacked into one folder per wnid) and "
    "val/ILSVRC2012_val_000NNNNN.JPEG (ILSVRC2012_img_val.tar) with the "
    "validation labels: ILSVRC2012_devkit_t12/data/"
    "ILSVRC2012_validation_ground_truth.txt + ILSVRC2012_devkit_t12/data/"
    "meta.mat (ILSVRC2012_devkit_t12.tar.gz; needs scipy), or "
    "LOC_val_solution.csv + LOC_synset_mapping.txt (Kaggle), or "
    "imagenet_2012_validation_synset_labels.txt (tensorflow/models), or "
    "val/nXXXXXXXX/*.JPEG subfolders;\n"
    "  or the TFRecords of tensorflow/models build_imagenet_data.py "
    "(https://github.com/tensorflow/models/tree/archive/research/inception): "
    "train-00000-of-01024 ... and validation-00000-of-00128 ..."
)


def _missing(tmp_dir: str, what: str) -> problem_lib.MissingDataError:
    return problem_lib.MissingDataError(
        f"ImageNet: {what} not found in {tmp_dir}.\n{HELP}"
    )


def imagenet_problem(
    name: str = "image_imagenet",
    image_size: tuple[int, int] = preprocessors.IMAGE_SIZE,
    loss_multiplier: float = 1.0,
) -> problem_lib.Problem:
    """The ImageNet problem with images resized to `image_size`."""
    return problem_lib.Problem(
        name=name,
        generators={
            problem_lib.TRAIN: _generator(problem_lib.TRAIN),
            problem_lib.DEV: _generator(problem_lib.DEV),
        },
        features={
            "inputs": features_lib.Feature(
                tf.string, (), modality=modality_specs.IMAGE
            ),
            "targets": features_lib.Feature(
                tf.int64, (), modality=modality_specs.class_label(NUM_CLASSES)
            ),
        },
        preprocessors=(preprocessors.image_feature(image_size),),
        metrics=("accuracy_top1", "accuracy_top5"),
        input_space_id=features_lib.SpaceID.IMAGE,
        target_space_id=features_lib.SpaceID.IMAGE_LABEL,
        loss_multiplier=loss_multiplier,
        raw_files_help=HELP,
        num_shards=1024,  # As build_imagenet_data.py and T2T.
        # No test split: ILSVRC-2012's test labels were never published; the
        # paper's and T2T's ImageNet figures are on the validation set (dev).
        manual_download=public_corpora.IMAGENET_HELP,
    )


IMAGE_IMAGENET = registry.register(imagenet_problem())
