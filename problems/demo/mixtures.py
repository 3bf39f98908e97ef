"""The offline demo mixtures: every demo problem, trained jointly.

The demo of README command 1 trains one MultiModel on `demo_all`: EN-DE,
DE-EN, EN-FR, parsing, Fashion-MNIST, speech and captioning, as the paper
trains on its eight tasks at once (section 4.2). The rates are relative
sampling weights (`proportional` sampling picks a problem with probability
rate / sum of rates):

- 2.0 for EN-DE and for Fashion-MNIST, the two problems the demo reports as
  its headline numbers (BLEU above zero, 80%+ top-1);
- 1.0 for DE-EN, EN-FR and speech: large enough sets that need many steps;
- 0.5 for captioning (1,000 drawings, mostly one- to three-word titles);
- 0.25 for parsing (40 trees: more only repeats them).

`demo_text` holds the four text-to-text problems, for a quicker run without
images or audio.
"""

from __future__ import annotations

from problems import registry
from problems.demo import caption as demo_caption
from problems.demo import image as demo_image
from problems.demo import parse as demo_parse
from problems.demo import speech as demo_speech
from problems.demo import translate as demo_translate

_TEXT_RATES = (
    (demo_translate.DEMO_TRANSLATE_ENDE_DING.name, 2.0),
    (demo_translate.DEMO_TRANSLATE_DEEN_DING.name, 1.0),
    (demo_translate.DEMO_TRANSLATE_ENFR_GETTEXT.name, 1.0),
    (demo_parse.DEMO_PARSE_PTB_ALLENNLP.name, 0.25),
)

DEMO_ALL = registry.register_mixture(
    registry.Mixture(
        "demo_all",
        (
            *_TEXT_RATES,
            (demo_image.DEMO_IMAGE_FASHION_MNIST.name, 2.0),
            (demo_speech.DEMO_SPEECH_ESPEAK.name, 1.0),
            (demo_caption.DEMO_CAPTION_OPENCLIPART.name, 0.5),
        ),
    )
)
DEMO_TEXT = registry.register_mixture(
    registry.Mixture("demo_text", _TEXT_RATES)
)
