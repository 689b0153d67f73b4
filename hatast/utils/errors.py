"""What a user can fix, and how every command reports it.

:class:`HatastError` is the one base class of problems with the user's input: an option, a file, a path, a value.
Every command runs through :func:`command`, which turns such an error into ``error: <message>`` lines on stderr and
exit status 2, Ctrl-C into one ``interrupted`` line (status 130), and anything else (a bug in hatast, not a problem
with the input) into its full traceback plus a line asking for a bug report (status 70). So a user never reads a
traceback for a mistake of theirs, and a real bug is never disguised as one.

This module imports nothing beyond the standard library: every layer may raise these errors.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable

EXIT_USER_ERROR = 2
EXIT_BUG = 70
"""``EX_SOFTWARE`` of sysexits.h: an internal error."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for Ctrl-C."""
BUG_REPORT = ("this is a bug in hatast, not a problem with your input: please report it with the command you ran "
              "and the traceback above")


class HatastError(ValueError):
    """A problem the user can fix, said in words that name the file, key, option or value.

    Subclasses say what kind of input it concerns (:class:`~hatast.utils.files.OutputError`,
    :class:`~hatast.utils.checkpoint.CheckpointError`, ...). A ``ValueError`` so that code written against earlier
    versions, which caught ``ValueError``, still catches it; commands catch only this class.
    """

    @property
    def lines(self) -> list[str]:
        """The message, one problem per line."""
        return [line for line in str(self).splitlines() if line.strip()] or [type(self).__name__]


class UsageError(HatastError):
    """An argument or a combination of arguments that cannot work (``--size`` for a fixed-scale model, ...)."""


def report_error(err: HatastError, stream=None) -> None:
    """Print ``err`` as ``error: ...`` lines."""
    stream = stream or sys.stderr
    for line in err.lines:
        print(f"error: {line}", file=stream)


def _tolerant_streams() -> None:
    """File names that are not valid UTF-8 (``bad\\xff.png`` on an old Latin-1 disk) reach Python as surrogates;
    printing one must show it escaped, not raise ``UnicodeEncodeError`` in the middle of a batch."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing to do
                pass


def _out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def command(main: Callable[..., int | None]) -> Callable[..., int]:
    """Run a command's ``main(argv) -> exit status`` so that it can end only in these ways:

    * its own exit status (0 done; 1 done with failures it reported, such as images it skipped);
    * 2 and ``error:`` lines for a :class:`HatastError` (argument parsers print one line and give 2 too: their
      ``SystemExit`` becomes the return value, so ``main(argv)`` always returns a status);
    * 2 and one line when memory ran out (with what to try);
    * 130 and one line on Ctrl-C (files being written are temporaries, removed as the writers unwind);
    * 70, the traceback and a bug-report line for anything else.
    """

    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        _tolerant_streams()
        try:
            status = main(*args, **kwargs)
        except HatastError as err:
            report_error(err)
            return EXIT_USER_ERROR
        except SystemExit as done:  # argparse (--help, a bad argument): its code, so main() always returns one
            code = done.code
            return code if isinstance(code, int) else (0 if code is None else EXIT_USER_ERROR)
        except KeyboardInterrupt:
            print("interrupted: stopped at your request (Ctrl-C); results already written are complete, the one "
                  "being written was removed", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as err:  # noqa: BLE001  (the boundary between hatast and the user: nothing escapes)
            if _out_of_memory(err):
                print(f"error: out of memory ({str(err).strip().splitlines()[0][:160] if str(err).strip() else ''})"
                      "; try smaller tiles (--tile 256), fewer threads or a smaller batch", file=sys.stderr)
                return EXIT_USER_ERROR
            traceback.print_exc()
            print(f"hatast: {BUG_REPORT}", file=sys.stderr)
            return EXIT_BUG
        return 0 if status is None else int(status)

    return run
