"""The paper's joint training mixture: the eight problems of Table 1.

Kaiser et al. 2017 (section 4; multimodel_facts.md section 1) train one
MultiModel jointly on eight problems: WSJ speech, ImageNet, COCO captioning,
WSJ parsing, WMT EN->DE, DE->EN, EN->FR and FR->EN. T2T issue 9 lists the
eight problem names used for it; LibriSpeech stands in for WSJ speech, which
is not public (SPEC.md section 3).

`multimodel_paper_8` gives every problem the same rate: the paper ran one
worker per task, so each task got the same number of updates (the
`per_worker` mixing mode reproduces that with one worker per problem; on one
host, `uniform` sampling, or `proportional` with these rates, does).
"""

from __future__ import annotations

from problems import registry
from problems.paper import (
    caption_mscoco,
    image_imagenet,
    parse_ptb,
    speech_librispeech,
    translate_wmt,
)

# In the order of T2T's --problems list of issue 9 (captioning, translation
# pairs, parsing, ImageNet), speech last; in `per_worker` mode worker w
# trains problem w mod 8.
PAPER_8 = (
    caption_mscoco.CAPTION_MSCOCO8K.name,
    translate_wmt.TRANSLATE_ENDE_WMT8K.name,
    translate_wmt.TRANSLATE_DEEN_WMT8K.name,
    translate_wmt.TRANSLATE_ENFR_WMT8K.name,
    translate_wmt.TRANSLATE_FREN_WMT8K.name,
    parse_ptb.PARSE_PTB_WSJ8K.name,
    image_imagenet.IMAGE_IMAGENET.name,
    speech_librispeech.SPEECH_LIBRISPEECH8K.name,
)

MULTIMODEL_PAPER_8 = registry.register_mixture(
    registry.Mixture(
        "multimodel_paper_8", tuple((name, 1.0) for name in PAPER_8)
    )
)
