"""Registered problems and mixtures of t2t_multimodel.

Importing this package registers every problem: each module is imported
explicitly and an ImportError is fatal (STYLE.md section 6).
"""

from problems import registry
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
