"""Where the paper's public corpora are published, with sizes and checksums.

Plain data for datagen (SPEC.md section 3; the paper's tasks, Kaiser et al.
2017 section 3): each `RemoteFile` is one archive as its publisher ships
it, grouped in `CORPORA` by corpus. No problem is imported here; problems
pick the groups or files they read. The URLs are those T2T's generators
used (tensor2tensor/data_generators/translate_ende.py, translate_enfr.py,
librispeech.py), except where that host is gone or unverifiable (noted).

Sizes and checksums, where published or pinned by a maintained project:
- WMT: no checksums from statmt.org. Size and SHA-256 are those pinned by
  tensorflow-datasets 4.9.10 (`url_checksums/wmt_t2t_translate.txt`,
  `wmt14_translate.txt`, `wmt19_translate.txt`); the MD5 of
  `test-full.tgz` is sacrebleu 2.6.0's (`wmt14/full`).
- LibriSpeech: MD5 as published by OpenSLR
  (https://www.openslr.org/resources/12/md5sum.txt); size and SHA-256 from
  tensorflow-datasets 4.9.10 (`datasets/librispeech/checksums.tsv`).
- COCO 2014: cocodataset.org publishes none; size and SHA-256 from
  tensorflow-datasets 4.9.10 (`url_checksums/coco2014.txt`). T2T's host,
  msvocds.blob.core.windows.net, is gone; these are the official URLs.
ImageNet and the Penn Treebank need a licence and a login: `MANUAL` holds
what to tell the user instead.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

from t2t_multimodel.data import download as download_lib


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One published file.

    Attributes:
      url: the publisher's URL.
      filename: the name it gets in `tmp_dir` (the problems look for it).
      size: bytes, or None when unknown.
      md5: hex digest, or None.
      sha256: hex digest, or None.
    """

    url: str
    filename: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None

    def download(
        self,
        directory: str,
        *,
        mirror: str | None = None,
        progress: bool = True,
    ) -> str:
        """`download.download` of this file into `directory`; its path."""
        return download_lib.download(
            self.url,
            directory,
            filename=self.filename,
            size=self.size,
            md5=self.md5,
            sha256=self.sha256,
            mirror=mirror,
            progress=progress,
        )


def _file(url: str, **kwargs) -> RemoteFile:
    return RemoteFile(url, url.rsplit("/", 1)[-1], **kwargs)


# WMT translation (tasks 5-8). EN-DE trains on the first three, EN-FR on the
# five after them (commoncrawl and europarl hold both pairs).
_STATMT = "http://www.statmt.org"
_WMT_DATA = "http://data.statmt.org"
WMT_NEWS_COMMENTARY_V11 = _file(
    f"{_WMT_DATA}/wmt16/translation-task/training-parallel-nc-v11.tgz",
    size=75_178_032,
    sha256="cfe8ab047e05043476e498ee765c98e939c7b7d6d294e856344c84476b619d6a",
)
WMT_COMMONCRAWL = _file(
    f"{_STATMT}/wmt13/training-parallel-commoncrawl.tgz",
    size=918_311_367,
    sha256="c7a74e2ea01ac6c920123108627e35278d4ccb5701e15428ffa34de86fa3a9e5",
)
WMT_EUROPARL_V7 = _file(
    f"{_STATMT}/wmt13/training-parallel-europarl-v7.tgz",
    size=657_632_379,
    sha256="0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7",
)
WMT_NEWS_COMMENTARY_V9 = _file(
    f"{_STATMT}/wmt14/training-parallel-nc-v9.tgz",
    size=80_418_416,
    sha256="cb8953f292298e6877ae433c98912b927cb0766b303f4540512ddd286c748485",
)
WMT_GIGA_FREN = _file(
    f"{_STATMT}/wmt10/training-giga-fren.tar",
    size=2_595_102_720,
    sha256="3ff8319f6919393520559bfbc7ad6a747ec81b3abc7be9993b338d4b017b4d9a",
)
WMT_UN = _file(
    f"{_STATMT}/wmt13/training-parallel-un.tgz",
    size=2_365_634_246,
    sha256="29141b5c1eba149a94f7a59d3b1a834b2e47fe0f8758d68dcd77a3d3f497ee47",
)
# newstest2013 (dev) and newstest2014 (the paper's test set, 3003 lines for
# EN-DE), SGML and plain text. T2T fetched WMT17's dev.tgz, for which no
# size or checksum is pinned anywhere; WMT19's (the same newstest2013 and
# 2014 files plus later years) is pinned by tensorflow-datasets.
WMT_DEV = _file(
    f"{_WMT_DATA}/wmt19/translation-task/dev.tgz",
    size=38_654_961,
    sha256="7a7deccf82ebb05ba508dba5eb21356492224e8f630ec4f992132b029b4b25e7",
)
WMT17_DEV_T2T = _file(f"{_WMT_DATA}/wmt17/translation-task/dev.tgz")
# newstest2014 as released after WMT14 (`test-full/newstest2014-deen-src.en.
# sgm`, ...): the full 3003-sentence set (sacrebleu's `wmt14/full`).
WMT14_TEST_FULL = _file(
    "https://statmt.org/wmt14/test-full.tgz",
    md5="a8cd784e006feb32ac6f3d9ec7eb389a",
)

# LibriSpeech (the public stand-in for WSJ speech, task 1), openslr.org/12.
_OPENSLR = "https://www.openslr.org/resources/12"
LIBRISPEECH_TRAIN_CLEAN_100 = _file(
    f"{_OPENSLR}/train-clean-100.tar.gz",
    size=6_387_309_499,
    md5="2a93770f6d5c6c964bc36631d331a522",
    sha256="d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
)
LIBRISPEECH_TRAIN_CLEAN_360 = _file(
    f"{_OPENSLR}/train-clean-360.tar.gz",
    size=23_049_477_885,
    md5="c0e676e450a7ff2f54aeade5171606fa",
    sha256="146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
)
LIBRISPEECH_TRAIN_OTHER_500 = _file(
    f"{_OPENSLR}/train-other-500.tar.gz",
    size=30_593_501_606,
    md5="d1a0fd59409feb2c614ce4d30c387708",
    sha256="ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
)
LIBRISPEECH_DEV_CLEAN = _file(
    f"{_OPENSLR}/dev-clean.tar.gz",
    size=337_926_286,
    md5="42e2234ba48799c1f50f24a7926300a1",
    sha256="76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
)
LIBRISPEECH_DEV_OTHER = _file(
    f"{_OPENSLR}/dev-other.tar.gz",
    size=314_305_928,
    md5="c8d0bcc9cca99d4f8b62fcc847357931",
    sha256="12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
)
LIBRISPEECH_TEST_CLEAN = _file(
    f"{_OPENSLR}/test-clean.tar.gz",
    size=346_663_984,
    md5="32fa31d27d2e1cad72775fee3f4849a9",
    sha256="39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
)
LIBRISPEECH_TEST_OTHER = _file(
    f"{_OPENSLR}/test-other.tar.gz",
    size=328_757_843,
    md5="fb5a50374b501bb3bac4815ee91d3135",
    sha256="d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
)

# MS-COCO 2014 captioning (task 3): captions JSON + images.
_COCO = "http://images.cocodataset.org"
COCO_ANNOTATIONS_2014 = _file(
    f"{_COCO}/annotations/annotations_trainval2014.zip",
    size=252_872_794,
    sha256="031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
)
COCO_TRAIN_2014 = _file(
    f"{_COCO}/zips/train2014.zip",
    size=13_510_573_713,
    sha256="ede4087e640bddba550e090eae701092534b554b42b05ac33f0300b984b31775",
)
COCO_VAL_2014 = _file(
    f"{_COCO}/zips/val2014.zip",
    size=6_645_013_297,
    sha256="fe9be816052049c34717e077d9e34aa60814a55679f804cd043e3cbee3b9fde0",
)

CORPORA: Mapping[str, tuple[RemoteFile, ...]] = types.MappingProxyType(
    {
        "wmt_ende": (
            WMT_NEWS_COMMENTARY_V11,
            WMT_COMMONCRAWL,
            WMT_EUROPARL_V7,
            WMT_DEV,
        ),
        "wmt_enfr": (
            WMT_COMMONCRAWL,
            WMT_EUROPARL_V7,
            WMT_NEWS_COMMENTARY_V9,
            WMT_GIGA_FREN,
            WMT_UN,
            WMT_DEV,
        ),
        "librispeech": (
            LIBRISPEECH_TRAIN_CLEAN_100,
            LIBRISPEECH_TRAIN_CLEAN_360,
            LIBRISPEECH_DEV_CLEAN,
            LIBRISPEECH_TEST_CLEAN,
        ),
        # The rest of T2T's 960 h (train-other-500) and the "other" sets.
        "librispeech_other": (
            LIBRISPEECH_TRAIN_OTHER_500,
            LIBRISPEECH_DEV_OTHER,
            LIBRISPEECH_TEST_OTHER,
        ),
        "mscoco2014": (COCO_ANNOTATIONS_2014, COCO_TRAIN_2014, COCO_VAL_2014),
    }
)

IMAGENET_HELP = (
    "ImageNet (ILSVRC-2012) cannot be downloaded automatically: it needs an "
    "account at https://image-net.org (accept the terms, then Download > "
    "2012). Put in tmp_dir ILSVRC2012_img_train.tar (138 GB, MD5 "
    "1d675b47d978889d74fa0da5fadfb00e), ILSVRC2012_img_val.tar (6.3 GB, MD5 "
    "29b22e2961454d5413ddabcf34fc5622) and ILSVRC2012_devkit_t12.tar.gz "
    "(MD5 fa75699e90414af021442c21a62c3abf), or Kaggle's copy "
    "(https://www.kaggle.com/c/imagenet-object-localization-challenge); "
    "`t2t_multimodel.data.download.verify_file` checks the MD5s."
)
PTB_HELP = (
    "The Penn Treebank (WSJ part of Treebank-3, LDC99T42) is licensed by "
    "the Linguistic Data Consortium and cannot be downloaded automatically: "
    "get it from https://catalog.ldc.upenn.edu/LDC99T42 and put its "
    "parsed/mrg/wsj/00 ... 24 folders of .mrg files under tmp_dir (sections "
    "02-21 train, 22 dev, 23 test)."
)
MANUAL: Mapping[str, str] = types.MappingProxyType(
    {"imagenet": IMAGENET_HELP, "ptb_wsj": PTB_HELP}
)


def download_corpus(
    name: str,
    directory: str,
    *,
    mirror: str | None = None,
    progress: bool = True,
) -> dict[str, str]:
    """Downloads every file of `CORPORA[name]` into `directory`.

    Returns:
      file name -> path.

    Raises:
      KeyError: `name` is not a corpus here; the message lists them and
        names the manual ones (`MANUAL`).
      download.DownloadError: see `download.download`.
    """
    if name not in CORPORA:
        manual = f" ({MANUAL[name]})" if name in MANUAL else ""
        raise KeyError(
            f"no public corpus {name!r}{manual}; known: {', '.join(CORPORA)}"
        )
    return {
        f.filename: f.download(directory, mirror=mirror, progress=progress)
        for f in CORPORA[name]
    }


__all__ = [
    "CORPORA",
    "IMAGENET_HELP",
    "MANUAL",
    "PTB_HELP",
    "RemoteFile",
    "download_corpus",
]
