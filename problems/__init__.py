"""Registered problems and mixtures of t2t_multimodel.

Importing this package registers every problem: each module is imported
explicitly and an ImportError is fatal (STYLE.md section 6).
"""

# Every problem module, imported explicitly: an ImportError is fatal.
from problems import (  # noqa: F401  (imported to register their problems)
    caption_mscoco,
    demo_caption,
    demo_image,
    demo_mixture,
    demo_parse,
    demo_speech,
    demo_translate,
    image_imagenet,
    parse_ptb,
    registry,
    speech_librispeech,
    translate_wmt,
)
from problems.registry import (
    Mixture,
    get,
    get_mixture,
    get_problem,
    list_mixtures,
    list_problems,
    register,
    register_mixture,
    resolve,
)

__all__ = [
    "Mixture",
    "get",
    "get_mixture",
    "get_problem",
    "list_mixtures",
    "list_problems",
    "register",
    "register_mixture",
    "registry",
    "resolve",
]
