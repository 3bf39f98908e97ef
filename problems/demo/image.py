"""Offline demo image classification: Fashion-MNIST from its Debian package.

A stand-in for the paper's ImageNet task (section 4) that installs offline
(`apt-get install dataset-fashion-mnist`, MIT licence): 28x28 grayscale
photos of clothes in 10 classes (`CLASS_NAMES`), read from the original IDX
files (gzip) in `/usr/share/datasets/fashion-mnist`. Train comes from
`train-*` (60,000 images; the first `MAX_TRAIN_EXAMPLES` in file order are
used), dev is the whole `t10k-*` evaluation split (10,000 images).

Images are stored as 28x28 grayscale PNG bytes (the layout ImageNet's JPEG
bytes have), labels as ints. The preprocessor decodes them to float32
`[28, 28, 3]` in [0, 1]: the gray channel is tiled to RGB because the image
modality is shared with the captioning demo's colour images (one entry flow
for all images, as in the paper). No augmentation: the paper's crop-and-flip
recipe is for 299x299 ImageNet and only slows a short CPU demo down.
Space IMAGE -> IMAGE_LABEL; metrics top-1 and top-5 accuracy.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
from PIL import Image

from problems import problem as problem_lib
from problems import registry
from t2t_multimodel.data import features as features_lib
from t2t_multimodel.data import preprocessors
from t2t_multimodel.modalities import specs as modality_specs

DATA_DIR = "/usr/share/datasets/fashion-mnist"
PACKAGE = "dataset-fashion-mnist"
# All of train by default; the demo may pass fewer (PNG encoding and TFRecord
# writing cost ~0.1 ms per image).
MAX_TRAIN_EXAMPLES = 60_000
IMAGE_SIZE = (28, 28)
CHANNELS = 3
NUM_CLASSES = 10
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILE_PREFIX = {problem_lib.TRAIN: "train", problem_lib.DEV: "t10k"}
_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def read_idx(path: str) -> np.ndarray:
    """Reads a gzipped IDX file of unsigned bytes (`*-ubyte.gz`).

    The format: a big-endian int32 magic `0x0000080D` where `0x08` is uint8
    and `D` the number of dimensions, then `D` big-endian int32 sizes, then
    the data in row-major order.

    Returns:
      uint8 array of the stored shape (`[N, 28, 28]` images, `[N]` labels).

    Raises:
      ValueError: on a wrong magic number or a truncated file.
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: {len(data) - offset} bytes for {shape}")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def encode_png(image: np.ndarray) -> bytes:
    """uint8 `[H, W]` (gray) or `[H, W, 3]` (RGB) -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def read_split(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images `[N, 28, 28]` and labels `[N]` of one split.

    Raises:
      MissingDataError: when the IDX files are absent.
    """
    prefix = _FILE_PREFIX[split]
    images_path = os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")
    labels_path = os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")
    for path in (images_path, labels_path):
        if not os.path.exists(path):
            raise problem_lib.MissingDataError(
                f"{path} not found: install Fashion-MNIST with `apt-get "
                f"install {PACKAGE}` (scripts/setup.sh installs every demo "
                "package)."
            )
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != IMAGE_SIZE:
        raise ValueError(
            f"{data_dir} {split}: images {images.shape}, labels {labels.shape}"
        )
    return images, labels


def _generator(
    data_dir: str, split: str, max_examples: int | None
) -> problem_lib.Generator:
    def generate(tmp_dir: str) -> Iterator[problem_lib.Example]:
        del tmp_dir  # The data comes from the installed package.
        images, labels = read_split(data_dir, split)
        for image, label in zip(images[:max_examples], labels[:max_examples]):
            yield {"inputs": encode_png(image), "targets": int(label)}

    return generate


def fashion_mnist_problem(
    data_dir: str = DATA_DIR,
    max_train_examples: int | None = MAX_TRAIN_EXAMPLES,
    name: str = "demo_image_fashion_mnist",
) -> problem_lib.Problem:
    """The Fashion-MNIST problem.

    Args:
      data_dir: where the IDX files are.
      max_train_examples: use the first this many train images (None: all);
        dev is always the full t10k split.
      name: registry name.
    """
    return problem_lib.Problem(
        name=name,
        generators={
            problem_lib.TRAIN: _generator(
                data_dir, problem_lib.TRAIN, max_train_examples
            ),
            problem_lib.DEV: _generator(data_dir, problem_lib.DEV, None),
        },
        features={
            "inputs": features_lib.Feature(
                tf.string, (), modality=modality_specs.IMAGE
            ),
            "targets": features_lib.Feature(
                tf.int64, (), modality=modality_specs.class_label(NUM_CLASSES)
            ),
        },
        preprocessors=(
            preprocessors.image_feature(
                IMAGE_SIZE, channels=CHANNELS, augment=False
            ),
        ),
        metrics=("accuracy_top1", "accuracy_top5"),
        input_space_id=features_lib.SpaceID.IMAGE,
        target_space_id=features_lib.SpaceID.IMAGE_LABEL,
        raw_files_help=f"`apt-get install {PACKAGE}` ({data_dir}).",
        num_shards=4,
        class_names=CLASS_NAMES,
    )


DEMO_IMAGE_FASHION_MNIST = registry.register(fashion_mnist_problem())
