"""Reading a ROS 2 YAML launch file into the list of nodes to start.

The same file runs under ``ros2 launch``, so the reading is as strict as ``launch_yaml``'s:
a top-level ``launch:`` list of one-key entries, and only the keys the real parser accepts
(``exec`` not ``executable``, ``namespace`` not ``ns``). Actions: ``arg``, ``let``, ``node``,
``include``, ``group``, ``push_ros_namespace`` (also spelled ``push-ros-namespace``), each
with optional ``if``/``unless``. Included files and ``scoped`` groups (the default) get
their own copy of the launch configurations and namespace, so what they set stays inside.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ros_nodes.launcher.executables import Executable, find_package_share, resolve
from ros_nodes.launcher.substitutions import (
    LaunchError,
    Scope,
    condition_value,
    evaluate,
    has_substitution,
)

OUTPUTS = ("screen", "log", "both")
CONDITIONS = ("if", "unless")
_KEYS: dict[str, tuple[set[str], set[str]]] = {  # action -> (required, optional)
    "arg": ({"name"}, {"default", "description", "choices"}),
    "let": ({"name", "value"}, set()),
    "node": (
        {"exec"},
        {
            "pkg",
            "name",
            "namespace",
            "param",
            "remap",
            "output",
            "respawn",
            "respawn_delay",
            "args",
            "ros_args",
        },
    ),
    "include": ({"file"}, {"arg"}),
    "group": ({"children"}, {"scoped", "forwarding"}),
    "push_ros_namespace": ({"namespace"}, set()),
}
_ALIASES = {"push-ros-namespace": "push_ros_namespace"}


@dataclass(frozen=True)
class NodeSpec:
    """One node to start, with everything substituted."""

    executable: Executable
    name: str | None
    namespace: str | None  # absolute, or None when neither the node nor a group set one
    parameters: tuple[dict[str, Any] | Path, ...]  # dicts of dotted names, or files
    remaps: tuple[tuple[str, str], ...]
    arguments: tuple[str, ...] = ()
    ros_arguments: tuple[str, ...] = ()
    output: str = "log"
    respawn: bool = False
    respawn_delay_s: float = 0.0
    where: str = ""

    @property
    def label(self) -> str:
        """How the node is named in output and errors."""
        return self.name or self.executable.name

    @property
    def full_name(self) -> str | None:
        """``/ns/name`` when both are known (the key of its parameter file), else None."""
        if self.name is None or self.namespace is None:
            return None
        return f"{self.namespace.rstrip('/')}/{self.name}"


@dataclass
class _Context:
    configurations: dict[str, str]
    namespace: str | None
    file: Path

    def child(self, file: Path | None = None) -> _Context:
        return _Context(dict(self.configurations), self.namespace, file or self.file)

    def scope(self) -> Scope:
        return Scope(self.configurations, self.file, find_package_share)


@dataclass
class LaunchPlan:
    """What a launch file asks for, once its arguments are known."""

    nodes: list[NodeSpec] = field(default_factory=list)
    declared: dict[str, str] = field(default_factory=dict)  # argument -> description


def load(path: str | Path, arguments: Mapping[str, str]) -> LaunchPlan:
    """Evaluate a launch file with command-line ``arguments`` (name -> value)."""
    file = Path(path).resolve()
    plan = LaunchPlan()
    _run_file(file, _Context(dict(arguments), None, file), plan, f"{path}")
    unknown = sorted(set(arguments) - set(plan.declared))
    if unknown:
        declared = (
            ", ".join(f"{n} ({d})" if d else n for n, d in sorted(plan.declared.items())) or "none"
        )
        raise LaunchError(
            f"{path}: unknown launch argument(s) {', '.join(unknown)}; this file declares: "
            f"{declared}"
        )
    return plan


def _run_file(file: Path, ctx: _Context, plan: LaunchPlan, shown: str) -> None:
    if not file.is_file():
        raise LaunchError(f"launch file {shown} not found")
    try:
        document = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise LaunchError(f"{shown}: not valid YAML ({exc})") from exc
    if not isinstance(document, dict) or set(document) != {"launch"}:
        raise LaunchError(f"{shown}: a YAML launch file has exactly one top-level key 'launch'")
    _run_entities(document["launch"], ctx, plan, shown)


def _run_entities(entities: Any, ctx: _Context, plan: LaunchPlan, where: str) -> None:
    if entities is None:
        return
    if not isinstance(entities, list):
        raise LaunchError(f"{where}: expected a list of actions, got {type(entities).__name__}")
    for i, entry in enumerate(entities):
        here = f"{where}: entry {i}"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise LaunchError(f"{here}: each action is a one-key mapping such as '- node: {{...}}'")
        ((kind, body),) = entry.items()
        kind = _ALIASES.get(kind, kind)
        if kind not in _KEYS:
            raise LaunchError(
                f"{here}: unknown action {kind!r} (known: {', '.join(sorted(_KEYS))})"
            )
        if not isinstance(body, dict):
            raise LaunchError(f"{here} ({kind}): expected a mapping of attributes")
        label = body.get("name") or body.get("exec") or body.get("file") or ""
        here = f"{here} ({kind}{' ' + repr(label) if label else ''})"
        _check_keys(kind, body, here)
        if not _condition_holds(body, ctx, here):
            continue
        _ACTIONS[kind](body, ctx, plan, here)


def _check_keys(kind: str, body: dict[str, Any], where: str) -> None:
    required, optional = _KEYS[kind]
    allowed = required | optional | set(CONDITIONS)
    unexpected = sorted(set(body) - allowed)
    if unexpected:
        hints = []
        for key in unexpected:
            close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.3)
            if key == "executable":
                close = ["exec"]
            elif key == "ns":
                close = ["namespace"]
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise LaunchError(
            f"{where}: unexpected attribute(s) {', '.join(hints)}; {kind} accepts "
            f"{', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(body))
    if missing:
        raise LaunchError(f"{where}: missing attribute(s) {', '.join(missing)}")


def _condition_holds(body: dict[str, Any], ctx: _Context, where: str) -> bool:
    for key in CONDITIONS:
        if key in body:
            value = condition_value(_text(body[key], ctx, f"{where} {key}"), f"{where} {key}")
            if value != (key == "if"):
                return False
    return True


def _text(value: Any, ctx: _Context, where: str) -> str:
    """An attribute as a string with substitutions applied (YAML scalars are accepted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return evaluate(str(value), ctx.scope(), where)
    raise LaunchError(f"{where}: expected a string, got {type(value).__name__} {value!r}")


def _arg(body: dict[str, Any], ctx: _Context, plan: LaunchPlan, where: str) -> None:
    name = _text(body["name"], ctx, where)
    description = str(body.get("description", ""))
    plan.declared.setdefault(name, description)
    if name not in ctx.configurations:
        if "default" not in body:
            raise LaunchError(
                f"{where}: required launch argument {name!r} was not given"
                + (f" ({description})" if description else "")
                + f"; pass {name}:=VALUE"
            )
        ctx.configurations[name] = _text(body["default"], ctx, where)
    choices = body.get("choices")
    if choices is not None and ctx.configurations[name] not in [str(c) for c in choices]:
        raise LaunchError(
            f"{where}: argument {name!r} is {ctx.configurations[name]!r}, not one of {choices}"
        )


def _let(body: dict[str, Any], ctx: _Context, plan: LaunchPlan, where: str) -> None:
    ctx.configurations[_text(body["name"], ctx, where)] = _text(body["value"], ctx, where)


def _group(body: dict[str, Any], ctx: _Context, plan: LaunchPlan, where: str) -> None:
    scoped = condition_value(_text(body.get("scoped", True), ctx, where), f"{where} scoped")
    if not condition_value(_text(body.get("forwarding", True), ctx, where), where):
        raise LaunchError(f"{where}: 'forwarding: false' is not supported by rl launch")
    _run_entities(body["children"], ctx.child() if scoped else ctx, plan, where)


def _push_namespace(body: dict[str, Any], ctx: _Context, plan: LaunchPlan, where: str) -> None:
    ctx.namespace = _join_namespace(ctx.namespace, _text(body["namespace"], ctx, where))


def _include(body: dict[str, Any], ctx: _Context, plan: LaunchPlan, where: str) -> None:
    target = Path(_text(body["file"], ctx, where))
    if not target.is_absolute():
        target = ctx.file.parent / target
    child = ctx.child(target.resolve())
    given = {}
    for i, item in enumerate(_list(body.get("arg"), f"{where} arg")):
        here = f"{where} arg {i}"
        if not isinstance(item, dict) or set(item) != {"name", "value"}:
            raise LaunchError(f"{here}: each include argument is {{name: ..., value: ...}}")
        given[_text(item["name"], ctx, here)] = _text(item["value"], ctx, here)
    child.configurations.update(given)
    inner = LaunchPlan()
    _run_file(child.file, child, inner, f"{target} (included from {where})")
    unknown = sorted(set(given) - set(inner.declared))
    if unknown:
        raise LaunchError(
            f"{where}: argument(s) {', '.join(unknown)} are not declared by {target} "
            f"(it declares: {', '.join(sorted(inner.declared)) or 'none'})"
        )
    plan.nodes.extend(inner.nodes)
    for name, description in inner.declared.items():
        plan.declared.setdefault(name, description)


def _node(body: dict[str, Any], ctx: _Context, plan: LaunchPlan, where: str) -> None:
    package = _text(body.get("pkg", ""), ctx, where)
    executable = resolve(package, _text(body["exec"], ctx, where), where)
    name = _text(body["name"], ctx, where) if "name" in body else None
    namespace = _text(body["namespace"], ctx, where) if "namespace" in body else None
    output = _text(body.get("output", "log"), ctx, where)
    if output not in OUTPUTS:
        raise LaunchError(f"{where}: output {output!r} is not one of {', '.join(OUTPUTS)}")
    respawn = condition_value(_text(body.get("respawn", False), ctx, where), f"{where} respawn")
    delay = _text(body.get("respawn_delay", 0.0), ctx, where)
    try:
        respawn_delay_s = float(delay)
    except ValueError as exc:
        raise LaunchError(f"{where}: respawn_delay {delay!r} is not a number of seconds") from exc
    plan.nodes.append(
        NodeSpec(
            executable=executable,
            name=name,
            namespace=_absolute(_join_namespace(ctx.namespace, namespace)),
            parameters=tuple(_parameters(body.get("param"), ctx, where)),
            remaps=tuple(_remaps(body.get("remap"), ctx, where)),
            arguments=tuple(_text(body.get("args", ""), ctx, where).split()),
            ros_arguments=tuple(_text(body.get("ros_args", ""), ctx, where).split()),
            output=output,
            respawn=respawn,
            respawn_delay_s=respawn_delay_s,
            where=where,
        )
    )


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise LaunchError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _remaps(value: Any, ctx: _Context, where: str) -> list[tuple[str, str]]:
    out = []
    for i, item in enumerate(_list(value, f"{where} remap")):
        here = f"{where} remap {i}"
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            raise LaunchError(f"{here}: each remap is {{from: ..., to: ...}}, got {item!r}")
        out.append((_text(item["from"], ctx, here), _text(item["to"], ctx, here)))
    return out


def _parameters(value: Any, ctx: _Context, where: str) -> list[dict[str, Any] | Path]:
    """launch_ros's normalisation: ``from`` files as paths, named values as one dict each."""
    out: list[dict[str, Any] | Path] = []
    for i, item in enumerate(_list(value, f"{where} param")):
        here = f"{where} param {i}"
        if not isinstance(item, dict):
            raise LaunchError(f"{here}: expected {{name: ..., value: ...}} or {{from: FILE}}")
        if "from" in item:
            if set(item) - {"from", "allow_substs"}:
                raise LaunchError(f"{here}: 'from' takes no other attributes, got {sorted(item)}")
            path = Path(_text(item["from"], ctx, here))
            if not path.is_file():
                raise LaunchError(f"{here}: parameter file {path} not found")
            out.append(path)
        else:
            out.append(_named_parameters([item], ctx, here, prefix=""))
    return out


def _named_parameters(items: list[Any], ctx: _Context, where: str, prefix: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or "name" not in item:
            raise LaunchError(f"{where}: a parameter needs a name, got {item!r}")
        extra = set(item) - {"name", "value", "param"}
        if extra:
            raise LaunchError(f"{where}: unexpected parameter attribute(s) {sorted(extra)}")
        name = prefix + _text(item["name"], ctx, where)
        if ("value" in item) == ("param" in item):
            raise LaunchError(f"{where}: parameter {name!r} needs either 'value' or nested 'param'")
        if "param" in item:
            params.update(_named_parameters(_list(item["param"], where), ctx, where, f"{name}."))
        else:
            params[name] = _parameter_value(item["value"], ctx, f"{where} {name}")
    return params


def _parameter_value(value: Any, ctx: _Context, where: str) -> Any:
    """YAML values keep their type; substituted strings are typed the way launch_ros does
    (read back as YAML: '3' is an integer, 'true' a bool)."""
    if isinstance(value, list):
        return [_parameter_value(v, ctx, where) for v in value]
    if isinstance(value, str) and has_substitution(value):
        text = evaluate(value, ctx.scope(), where)
        try:
            typed = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return typed if isinstance(typed, bool | int | float | str | list) else text
    if value is None or isinstance(value, dict):
        raise LaunchError(f"{where}: parameter value {value!r} is not a scalar or a list")
    return value


def _join_namespace(base: str | None, namespace: str | None) -> str | None:
    """launch_ros's prefix_namespace: an absolute namespace ignores what groups pushed."""
    if namespace is None or namespace == "":
        return base
    if base is None or namespace.startswith("/"):
        return namespace
    return f"{base.rstrip('/')}/{namespace}"


def _absolute(namespace: str | None) -> str | None:
    if namespace is None:
        return None
    return namespace if namespace.startswith("/") else f"/{namespace}"


_ACTIONS = {
    "arg": _arg,
    "let": _let,
    "node": _node,
    "include": _include,
    "group": _group,
    "push_ros_namespace": _push_namespace,
}
