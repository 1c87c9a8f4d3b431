"""The one error tree of parbench.

Every error meant for a user derives from ``ParbenchError``: its ``str()`` is
one line (file, key or line:column, what was found, what was expected) and
its ``exit_code`` is the status the ``parbench`` command exits with.  The
command catches ``ParbenchError`` once (``parbench.cli``), prints the line and
exits; no subcommand prints tracebacks or calls ``sys.exit`` for errors.

Exit statuses: 0 all good; 1 a check failed or a run could not complete
(``EXIT_FAIL``); 2 bad input, from a file, an option or the environment
(``EXIT_USAGE``); 128 + the signal number when a signal (SIGINT: 130,
``EXIT_INTERRUPTED``; SIGTERM: 143; SIGHUP: 129) ended the work.
"""
from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ParbenchError(Exception):
    """Base class: one line for the user, and the exit status it means."""

    exit_code: int = EXIT_FAIL

    def one_line(self) -> str:
        text = str(self).strip()
        return text.splitlines()[0] if text else type(self).__name__


class UsageError(ParbenchError):
    """Bad input: a file, a key, an option or a value the user gave."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(ParbenchError):
    """Something this machine lacks (a tool, a registry, a build) that the user can fix."""

    exit_code = EXIT_USAGE


class RunFailure(ParbenchError):
    """An implementation misbehaved or a run could not complete."""

    exit_code = EXIT_FAIL


class InputFileError(UsageError):
    """A file the user gave does not hold what was expected.

    ``str()`` is ``FILE: KEY: what was expected, what was found`` (``KEY`` a
    dotted path such as ``workload.connections`` or ``runs[3].verdict``;
    left out when the whole file is at fault)."""

    def __init__(self, file: object, key: str | None, message: str):
        self.file = str(file)
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class Interrupted(ParbenchError):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) ended the work; what was finished
    is kept.  The exit status is 128 + the signal number."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
