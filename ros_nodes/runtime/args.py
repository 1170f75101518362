"""The standard ``--ros-args`` command line, parsed the way rcl parses it.

What ``ros2 launch`` (and the project's ``rl launch``) passes to an executable::

    <exec> [own args] --ros-args -r __node:=NAME -r __ns:=/NS --params-file FILE \
        -p name:=value -r from:=to [--log-level LEVEL] [--]

Parameter files use the ROS 2 format: ``<node>: {ros__parameters: {...}}`` where ``<node>``
is the node name, its fully qualified name, or a wildcard (``/**``, ``/**/name``); nested
mappings become dotted parameter names. Values given with ``-p`` are YAML, as in rcl.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class RosArgsError(ValueError):
    """A malformed ``--ros-args`` command line or parameter file."""


@dataclass
class RosArgs:
    """The ROS part of a command line; ``node_name``/``namespace`` None when not remapped."""

    node_name: str | None = None
    namespace: str | None = None
    remaps: dict[str, str] = field(default_factory=dict)
    param_files: list[Path] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # from -p, in order
    log_level: str | None = None
    rest: list[str] = field(default_factory=list)  # arguments outside --ros-args

    def parameter_overrides(self, node_fqn: str) -> dict[str, Any]:
        """Files first (in order), then ``-p`` values: the later one wins, as in rcl."""
        values: dict[str, Any] = {}
        for path in self.param_files:
            values.update(load_params_file(path, node_fqn))
        values.update(self.params)
        return values


def parse_ros_args(argv: list[str]) -> RosArgs:
    """Split ``argv`` (without the program name) into ROS arguments and the rest."""
    out = RosArgs()
    i, in_ros = 0, False
    while i < len(argv):
        arg = argv[i]
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--" and in_ros:
            in_ros = False
        elif not in_ros:
            out.rest.append(arg)
        elif arg in ("-r", "--remap", "-p", "--param", "--params-file", "--log-level"):
            if i + 1 >= len(argv):
                raise RosArgsError(f"--ros-args: {arg} needs a value")
            value = argv[i + 1]
            i += 1
            if arg in ("-r", "--remap"):
                _add_remap(out, value)
            elif arg in ("-p", "--param"):
                name, _, text = value.partition(":=")
                if not _ or not name:
                    raise RosArgsError(f"--ros-args: -p expects name:=value, got {value!r}")
                out.params[name] = yaml.safe_load(text) if text else ""
            elif arg == "--params-file":
                path = Path(value)
                if not path.is_file():
                    raise RosArgsError(f"--params-file {value}: no such file")
                out.param_files.append(path)
            else:
                out.log_level = value
        elif arg in (
            "--enable-rosout-logs",
            "--disable-rosout-logs",
            "--enable-stdout-logs",
            "--disable-stdout-logs",
            "--enable-external-lib-logs",
            "--disable-external-lib-logs",
        ):
            pass  # logging sinks: accepted for compatibility, stdout logging is always on
        else:
            raise RosArgsError(
                f"--ros-args: unknown argument {arg!r} (supported: -r from:=to, "
                "-p name:=value, --params-file FILE, --log-level LEVEL)"
            )
        i += 1
    return out


def _add_remap(out: RosArgs, value: str) -> None:
    src, sep, dst = value.partition(":=")
    if not sep or not src or not dst:
        raise RosArgsError(f"--ros-args: -r expects from:=to, got {value!r}")
    # A remap may be scoped to one node ("node:from:=to"); one process runs one node here.
    key = src.split(":", 1)[1] if ":" in src and not src.startswith("/") else src
    if key == "__node" or key == "__name":
        out.node_name = dst
    elif key == "__ns":
        out.namespace = dst if dst.startswith("/") else "/" + dst
    else:
        out.remaps[key] = dst


def load_params_file(path: Path, node_fqn: str) -> dict[str, Any]:
    """The parameters a ROS 2 params YAML gives to the node ``node_fqn`` (``/ns/name``)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise RosArgsError(f"parameter file {path}: not valid YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise RosArgsError(
            f"parameter file {path}: top level must map node names to {{ros__parameters: {{...}}}}"
        )
    name = node_fqn.rsplit("/", 1)[-1]
    values: dict[str, Any] = {}
    for key, body in doc.items():
        if not _node_key_matches(str(key), node_fqn, name):
            continue
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise RosArgsError(f"parameter file {path}: entry {key!r} has no ros__parameters")
        values.update(_flatten(body["ros__parameters"] or {}))
    return values


def _node_key_matches(key: str, node_fqn: str, name: str) -> bool:
    if key in (name, node_fqn, "/**", "**"):
        return True
    key = key if key.startswith("/") else "/" + key
    # rcl wildcards: "*" one token, "**" any number of tokens.
    pattern = key.replace("/**/", "/*/").replace("/**", "/*")
    return fnmatch.fnmatchcase(node_fqn, pattern) or fnmatch.fnmatchcase(node_fqn, key)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out
