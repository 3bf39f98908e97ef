"""Registered problems and mixtures of t2t_multimodel.

Importing this package registers every problem: each module is imported
explicitly and an ImportError is fatal (STYLE.md section 6).
"""

# Every problem module, imported explicitly: an ImportError is fatal.
from problems import registry
from problems.demo import caption as demo_caption  # noqa: F401
from problems.demo import image as demo_image  # noqa: F401
from problems.demo import mixtures as demo_mixtures  # noqa: F401
from problems.demo import parse as demo_parse  # noqa: F401
from problems.demo import speech as demo_speech  # noqa: F401
from problems.demo import translate as demo_translate  # noqa: F401
from problems.paper import (
    caption_mscoco,  # noqa: F401
    image_imagenet,  # noqa: F401
    mixtures,  # noqa: F401
    parse_ptb,  # noqa: F401
    speech_librispeech,  # noqa: F401
    translate_wmt,  # noqa: F401
)
from problems.registry import (
    Mixture,
    get,
    get_mixture,
    get_problem,
    list_mixtures,
    list_problems,
    mixture_rates,
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
    "mixture_rates",
    "register",
    "register_mixture",
    "registry",
    "resolve",
]
