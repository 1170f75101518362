"""The ``rl`` command: commands registered through entry points, errors reported in one place.

Registration, one mechanism for every command, nested or not: an entry point in the
``robot_learning.commands`` group of pyproject.toml names a dotted command path (``store``,
``sim.view``, ``store.import-bag``) and a function ``register(subparsers)`` that adds the
command's parser with ``func`` set (args -> exit status) and, for a command with children,
returns its own subparsers (children defined in the same module are added there directly).
Entry points keep dependencies pointing one way: ``data_collection`` adds ``rl sim collect``
without ``robot_learning`` importing it. Modules load when ``rl`` starts; heavy libraries
(MuJoCo, torch) load only when a command runs.

Errors: a command raises; ``main`` reports every error once, the same way for every command:
one line ``rl <command>: error: <message>`` on stderr and the exit status of
``robot_learning.errors.ExitCode`` (``rl -v`` adds the traceback). ``rl --help`` lists every
command, nested ones included.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

from robot_learning.errors import EXIT_CODE_HELP, ExitCode, RobotLearningError

ENTRY_POINT_GROUP = "robot_learning.commands"
PROG = "rl"
_PROG_DEST = "_rl_command"  # the full command name (``rl store list``) an error is reported as


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [-h] [-v] COMMAND ...",
        description="Robot-learning stack: calibration, demonstration store, simulated "
        "workcell, collection, training, evaluation and deployment.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, and the traceback of an error"
    )
    root = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS)
    children: dict[str, argparse._SubParsersAction] = {"": root}
    commands = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    if not commands:
        raise SystemExit(f"{PROG}: no commands registered; install the package (pip install -e .)")
    for command in commands:
        parent = command.name.rpartition(".")[0]
        if parent not in children:
            raise SystemExit(f"{PROG}: command {command.name!r} has no parent command {parent!r}")
        sub = command.load()(children[parent])
        if sub is not None:
            children[command.name] = sub
    for name, sub_parser, _ in _walk(root):
        _finish(sub_parser, name)
    parser.epilog = command_listing(parser) + "\n\n" + exit_status_listing()
    return parser


def _walk(
    action: argparse._SubParsersAction, prefix: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(command path, parser, one-line help) of every command below ``action``, depth first."""
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    for name, parser in action.choices.items():
        if name not in helps:  # an alias
            continue
        yield f"{prefix}{name}", parser, helps[name]
        for sub in _subcommands(parser):
            yield from _walk(sub, f"{prefix}{name} ")


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _finish(parser: argparse.ArgumentParser, name: str) -> None:
    """What every command gets alike: its name for error messages, ``-v`` after the command
    name too, and (for a group) its help with exit status 2 when no subcommand is given."""
    # argparse names a subparser after its parent's usage line ("rl [-h] [-v] COMMAND ...
    # store list"); its usage, help and argument errors should say "rl store list".
    parser.prog = f"{PROG} {name}"
    parser.set_defaults(**{_PROG_DEST: parser.prog})
    if not any({"-v", "--verbose"} & set(a.option_strings) for a in parser._actions):
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="debug logging, and the traceback of an error",
        )
    for sub in _subcommands(parser):
        sub.required = False

        def print_help(args: argparse.Namespace, parser: argparse.ArgumentParser = parser) -> int:
            parser.print_help(sys.stderr)
            return ExitCode.BAD_INPUT

        parser.set_defaults(func=print_help)


def command_listing(parser: argparse.ArgumentParser) -> str:
    """Every command, nested ones indented under their group, with its one-line help."""
    rows = []
    for action in _subcommands(parser):
        for path, _, help_text in _walk(action):
            label = "  " + "  " * path.count(" ") + path
            rows.append(
                f"{label:<28} {help_text}" if len(label) < 28 else f"{label}\n{'':<28} {help_text}"
            )
    return "commands:\n" + "\n".join(rows)


def exit_status_listing() -> str:
    return "exit status:\n" + "\n".join(
        f"  {int(code):<4} {text}" for code, text in EXIT_CODE_HELP.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would blame "rl"; the command that got them says so instead
        name = getattr(args, _PROG_DEST, PROG)
        commands = {path: p for a in _subcommands(parser) for path, p, _ in _walk(a)}
        command = commands.get(name.removeprefix(f"{PROG} "), parser)
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # chatty at INFO about accelerate
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return ExitCode.BAD_INPUT
    return run_command(args.func, args, getattr(args, _PROG_DEST, PROG), verbose=verbose)


def run_command(
    func: Callable[[argparse.Namespace], int | None],
    args: argparse.Namespace,
    name: str,
    *,
    verbose: bool = False,
) -> int:
    """Run one command; report any error as one line and return the exit status."""
    try:
        return int(func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 (reported, with the traceback under -v)
        code, message = describe_error(exc)
        if verbose:
            traceback.print_exc()
        print(f"{name}: {message}", file=sys.stderr)
        return code


def describe_error(exc: BaseException) -> tuple[ExitCode, str]:
    """(exit status, one-line message) of an exception a command raised."""
    if isinstance(exc, RobotLearningError):
        label = "interrupted" if exc.exit_code == ExitCode.INTERRUPTED else "error"
        return exc.exit_code, f"{label}: {_one_line(exc)}"
    if isinstance(exc, OSError):
        text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        if exc.errno == errno.ENOSPC:
            return ExitCode.DISK_FULL, f"error: {text}"
        bad_path = (
            FileNotFoundError,
            NotADirectoryError,
            IsADirectoryError,
            PermissionError,
            FileExistsError,
        )
        code = ExitCode.BAD_INPUT if isinstance(exc, bad_path) else ExitCode.FAILURE
        return code, f"error: {text}"
    if isinstance(exc, (ValueError, argparse.ArgumentTypeError)):  # configs validate with these
        return ExitCode.BAD_INPUT, f"error: {_one_line(exc)}"
    return ExitCode.FAILURE, (
        f"internal error: {type(exc).__name__}: {_one_line(exc)} "
        f"(a bug; `{PROG} -v ...` shows where, please report it)"
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
