"""``main``: parse, check, run the command; the one error boundary (one ``error: ...`` line,
exit status 2), which :func:`run_script` lends to the scripts under ``analyses/``."""

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from hyperdas_tl.cli.parser import EXIT_ERROR, build_parser

EXIT_INTERRUPTED = 130


def is_expected(error: BaseException) -> bool:
    """Errors whose message is written for the user (bad input, files, the lock, a training run
    that went non-finite); anything else is a bug or an environment problem."""
    from hyperdas_tl.run_dir import RunDirLockedError

    return isinstance(error, ValueError | OSError | FloatingPointError | RunDirLockedError)


def describe_error(error: BaseException) -> str:
    """One line for ``error: ...``: the library's own message (they name the file or option),
    with the exception type for unexpected errors, and any notes appended."""
    text = str(error) or type(error).__name__
    if not is_expected(error):
        text = f"{type(error).__name__}: {text}"
    notes = [str(note) for note in getattr(error, "__notes__", [])]
    return " ".join(" ".join([text, *notes]).split())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    try:
        if hasattr(args, "check"):
            args.check(args)
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the one error boundary: every failure ends in one line
        if args.debug:
            traceback.print_exception(error, file=sys.stderr)
        hint = "" if args.debug or is_expected(error) else " (run with --debug for the traceback)"
        print(f"error: {describe_error(error)}{hint}", file=sys.stderr)
        return EXIT_ERROR


def run_script(main: Callable[[], Any]) -> int:
    """The error boundary of a script (``analyses/*.py``, ``python -m hyperdas_tl.bench``:
    ``raise SystemExit(run_script(main))``).

    Runs ``main()``; an expected error (:func:`is_expected`: bad input, a missing file, a
    refused precision) ends in one ``error: ...`` line on stderr and exit status 2, an interrupt
    in ``error: interrupted`` and 130. Anything else is a bug and keeps its traceback. Returns
    ``main``'s exit status when it returns one (an int), else 0; ``main``'s own ``SystemExit``
    (argparse's usage errors) passes through."""
    try:
        status = main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if not is_expected(error):
            raise
        print(f"error: {describe_error(error)}", file=sys.stderr)
        return EXIT_ERROR
    return status if isinstance(status, int) else 0
