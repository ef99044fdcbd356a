"""Command line: ``python -m hyperdas_tl {demo,train,evaluate,reproduce,quickstart}``
(``hyperdas-tl``).

``--help``, bad options and bad values answer at once: no module here imports torch,
transformers or TransformerLens at import time; each command imports what it needs when it runs.

One concept per module:

- :mod:`~hyperdas_tl.cli.parser`: the options of every command (:func:`build_parser`; its
  docstring is ``--help``'s text) and the names the choices spell out;
- :mod:`~hyperdas_tl.cli.checks`: each option's value check and the option combinations the
  parser cannot see (:class:`CLIError`);
- :mod:`~hyperdas_tl.cli.commands`: the command bodies (train, evaluate, demo, reproduce,
  quickstart);
- :mod:`~hyperdas_tl.cli.entry`: :func:`main`, the one error boundary.
"""

from hyperdas_tl.cli.checks import RAVEL_ENV_VAR, CLIError
from hyperdas_tl.cli.commands import demo_config_from_args, profile_from_args
from hyperdas_tl.cli.entry import EXIT_INTERRUPTED, describe_error, is_expected, main
from hyperdas_tl.cli.parser import (
    DEMO_OUT,
    EXIT_ERROR,
    MODEL_CHOICES,
    PRECISION_CHOICES,
    PROFILE_CHOICES,
    RAVEL_DOMAIN_CHOICES,
    SMOLLM2_NAME,
    TRAIN_OUT,
    build_parser,
)

__all__ = [
    "DEMO_OUT",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "MODEL_CHOICES",
    "PRECISION_CHOICES",
    "PROFILE_CHOICES",
    "RAVEL_DOMAIN_CHOICES",
    "RAVEL_ENV_VAR",
    "SMOLLM2_NAME",
    "TRAIN_OUT",
    "CLIError",
    "build_parser",
    "demo_config_from_args",
    "describe_error",
    "is_expected",
    "main",
    "profile_from_args",
]
