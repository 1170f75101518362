"""``$(...)`` substitutions of the ROS 2 launch frontends, evaluated without running code.

Supported, with the same meaning as in ``launch``/``launch_ros``: ``$(var NAME)``,
``$(env NAME [DEFAULT])``, ``$(optenv NAME [DEFAULT])``, ``$(find-pkg-share PKG)``,
``$(dirname)``, ``$(filename)``, ``$(not X)``, ``$(and X Y)``, ``$(or X Y)``,
``$(equals X Y)``, ``$(not-equals X Y)`` and ``$(eval EXPR)``. ``eval`` accepts only
literals, arithmetic, comparisons, ``and``/``or``/``not`` and ``x if c else y`` (checked on
the syntax tree): a launch file is configuration, never a way to run arbitrary code.
Substitutions nest: ``$(var $(env ROBOT_ARG))``.
"""

from __future__ import annotations

import ast
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_learning.errors import InputError


class LaunchError(InputError):
    """A launch file or command line that cannot be run; the message names file and entry."""


@dataclass(frozen=True)
class Substitution:
    name: str
    args: tuple[tuple[Part, ...], ...]


Part = str | Substitution


@dataclass(frozen=True)
class Scope:
    """What substitutions see: launch configurations, the file being read, package lookup."""

    configurations: Mapping[str, str]
    file: Path
    find_package_share: Callable[[str], Path]


def parse(text: str, where: str) -> tuple[Part, ...]:
    """Split ``text`` into literal strings and substitutions."""
    parts, _ = _parse_parts(text, 0, where, inside=False)
    return tuple(parts)


def has_substitution(text: str) -> bool:
    return "$(" in text


def evaluate(text: str, scope: Scope, where: str) -> str:
    """The string ``text`` with every substitution replaced."""
    return _join(parse(text, where), scope, where)


def _parse_parts(text: str, pos: int, where: str, *, inside: bool) -> tuple[list[Part], int]:
    """Parts until the end of text, or (``inside``) until a space/``)`` ends an argument."""
    parts: list[Part] = []
    literal: list[str] = []
    while pos < len(text):
        if text.startswith("$(", pos):
            if literal:
                parts.append("".join(literal))
                literal = []
            sub, pos = _parse_substitution(text, pos + 2, where)
            parts.append(sub)
            continue
        char = text[pos]
        if inside and (char in " )" or char.isspace()):
            break
        if inside and char in "'\"":
            end = text.find(char, pos + 1)
            if end < 0:
                raise LaunchError(f"{where}: unterminated quote in {text!r}")
            inner, _ = _parse_parts(text[pos + 1 : end], 0, where, inside=False)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.extend(inner)
            pos = end + 1
            continue
        literal.append(char)
        pos += 1
    if literal:
        parts.append("".join(literal))
    return parts, pos


def _parse_substitution(text: str, pos: int, where: str) -> tuple[Substitution, int]:
    start = pos
    while pos < len(text) and not text[pos].isspace() and text[pos] != ")":
        pos += 1
    name = text[start:pos]
    args: list[tuple[Part, ...]] = []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            raise LaunchError(f"{where}: '$({name}' is never closed in {text!r}")
        if text[pos] == ")":
            break
        if name == "eval" and not args:  # the expression is everything up to the ')'
            parts, pos = _parse_eval_argument(text, pos, where)
        else:
            parts, pos = _parse_parts(text, pos, where, inside=True)
        args.append(tuple(parts))
    if name not in _HANDLERS:
        raise LaunchError(
            f"{where}: unknown substitution '$({name} ...)' (known: {', '.join(sorted(_HANDLERS))})"
        )
    return Substitution(name, tuple(args)), pos + 1


def _parse_eval_argument(text: str, pos: int, where: str) -> tuple[list[Part], int]:
    """An eval expression: one quoted string, or raw text with balanced parentheses."""
    if text[pos] in "'\"":
        quote = text[pos]
        end = text.find(quote, pos + 1)
        if end < 0:
            raise LaunchError(f"{where}: unterminated quote in {text!r}")
        inner, _ = _parse_parts(text[pos + 1 : end], 0, where, inside=False)
        return inner, end + 1
    depth, parts, literal = 0, [], []
    while pos < len(text):
        if text.startswith("$(", pos):
            if literal:
                parts.append("".join(literal))
                literal = []
            sub, pos = _parse_substitution(text, pos + 2, where)
            parts.append(sub)
            continue
        char = text[pos]
        if char == ")" and depth == 0:
            break
        depth += {"(": 1, ")": -1}.get(char, 0)
        literal.append(char)
        pos += 1
    if literal:
        parts.append("".join(literal))
    return parts, pos


def _join(parts: tuple[Part, ...], scope: Scope, where: str) -> str:
    return "".join(p if isinstance(p, str) else _apply(p, scope, where) for p in parts)


def _apply(sub: Substitution, scope: Scope, where: str) -> str:
    args = [_join(a, scope, where) for a in sub.args]
    low, high = _ARITY[sub.name]
    if not low <= len(args) <= high:
        raise LaunchError(
            f"{where}: '$({sub.name})' takes {low}..{high} arguments, got {len(args)} {args}"
        )
    return _HANDLERS[sub.name](args, scope, where)


def _var(args: list[str], scope: Scope, where: str) -> str:
    name = args[0]
    if name not in scope.configurations:
        known = ", ".join(sorted(scope.configurations)) or "none"
        raise LaunchError(
            f"{where}: '$(var {name})' names no launch argument or 'let' (defined: {known})"
        )
    return scope.configurations[name]


def _env(args: list[str], scope: Scope, where: str) -> str:
    value = os.environ.get(args[0])
    if value is not None:
        return value
    if len(args) == 2:
        return args[1]
    raise LaunchError(
        f"{where}: environment variable {args[0]!r} is not set and '$(env {args[0]})' has no "
        "default; set it or write '$(env NAME DEFAULT)'"
    )


def _optenv(args: list[str], scope: Scope, where: str) -> str:
    return os.environ.get(args[0], args[1] if len(args) == 2 else "")


def condition_value(text: str, where: str) -> bool:
    """Launch's truth values: true/false/1/0, any case; anything else is an error."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise LaunchError(f"{where}: {text!r} is not a truth value (use true, false, 1 or 0)")


def _logic(combine: Callable[[list[bool]], bool]) -> Callable[[list[str], Scope, str], str]:
    def handler(args: list[str], scope: Scope, where: str) -> str:
        return "true" if combine([condition_value(a, where) for a in args]) else "false"

    return handler


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def safe_eval(expression: str, where: str) -> Any:
    """Evaluate literals, arithmetic, comparisons and boolean logic; reject everything else."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise LaunchError(f"{where}: $(eval) cannot parse {expression!r}: {exc.msg}") from exc

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            return [walk(e) for e in node.elts]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            value = walk(node.operand)
            return {ast.Not: lambda v: not v, ast.USub: operator.neg, ast.UAdd: operator.pos}[
                type(node.op)
            ](value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.BoolOp):
            values = [walk(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
            left = walk(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = walk(right_node)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return walk(node.body) if walk(node.test) else walk(node.orelse)
        raise LaunchError(
            f"{where}: $(eval) allows literals, arithmetic, comparisons and and/or/not only; "
            f"{ast.unparse(node)!r} is not allowed in {expression!r}"
        )

    try:
        return walk(tree)
    except (TypeError, ZeroDivisionError) as exc:
        raise LaunchError(f"{where}: $(eval {expression}) failed: {exc}") from exc


_HANDLERS: dict[str, Callable[[list[str], Scope, str], str]] = {
    "var": _var,
    "env": _env,
    "optenv": _optenv,
    "find-pkg-share": lambda a, s, w: str(s.find_package_share(a[0])),
    "dirname": lambda a, s, w: str(s.file.parent),
    "filename": lambda a, s, w: s.file.name,
    "not": _logic(lambda v: not v[0]),
    "and": _logic(all),
    "or": _logic(any),
    "equals": lambda a, s, w: "true" if a[0] == a[1] else "false",
    "not-equals": lambda a, s, w: "true" if a[0] != a[1] else "false",
    "eval": lambda a, s, w: str(safe_eval(a[0], w)),
}
_ARITY = {
    "var": (1, 1),
    "env": (1, 2),
    "optenv": (1, 2),
    "find-pkg-share": (1, 1),
    "dirname": (0, 0),
    "filename": (0, 0),
    "not": (1, 1),
    "and": (2, 2),
    "or": (2, 2),
    "equals": (2, 2),
    "not-equals": (2, 2),
    "eval": (1, 1),
}
