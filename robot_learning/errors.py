"""The errors a user sees, and the exit status of every ``rl`` command: defined once, here.

A command never prints its own errors: it raises, and ``robot_learning.cli.main`` reports
the error as one line (``rl store list: error: <message>``) and exits with the status its
class declares. ``rl -v`` adds the traceback. Each package's errors derive from these two
classes, so a command registered anywhere gets the same handling without listing them.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit status of ``rl`` (documented in the README's CLI reference and ``rl --help``)."""

    OK = 0
    FAILURE = 1  # ran, and failed or answered no (validation problems, a failed check, a crash)
    BAD_INPUT = 2  # the command line, a path, or a file/store/checkpoint given cannot be used
    DISK_FULL = 3  # the disk filled up; what was already committed is intact
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


EXIT_CODE_HELP = {
    ExitCode.OK: "ok",
    ExitCode.FAILURE: "the command ran and failed, or a check it ran found problems",
    ExitCode.BAD_INPUT: "bad usage or input: arguments, a missing path, a damaged store or file",
    ExitCode.DISK_FULL: "the disk is full (committed data is intact)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


class RobotLearningError(Exception):
    """An error with a message for the user; ``exit_code`` is the status ``rl`` exits with."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __str__(self) -> str:  # one message even where a base class (KeyError) would quote it
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InputError(RobotLearningError, ValueError):
    """Input that cannot be used as given: an argument, a file, a configuration value."""

    exit_code = ExitCode.BAD_INPUT


class Interrupted(RobotLearningError):
    """Raised on Ctrl-C by a command that has something to say about what was kept."""

    exit_code = ExitCode.INTERRUPTED


class CheckFailedError(RobotLearningError):
    """A check the command ran said no (a calibration that fails its held-out views, a file
    for other cameras): the input was readable, the answer is negative."""

    exit_code = ExitCode.FAILURE
