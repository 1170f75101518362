"""Finding a node's ``pkg``/``exec`` and a package's share directory without ROS 2 installed.

``ros2 launch`` looks executables up in ``<prefix>/lib/<pkg>`` of an installed ament package;
``rl launch`` looks them up where pip put them: the entry points of the group
``robot_learning.ros_nodes`` (name = exec, value = ``module:main``, ``main(argv) -> int``).
``RL_LAUNCH_EXECUTABLES="exec=module:function,..."`` adds executables of package
``robot_learning`` without installing anything (a lab's own nodes, test nodes).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from ros_nodes.launcher.substitutions import LaunchError

PACKAGE = "robot_learning"
ENTRY_POINT_GROUP = "robot_learning.ros_nodes"
EXTRA_EXECUTABLES_ENV = "RL_LAUNCH_EXECUTABLES"
REPO_ROOT = Path(__file__).resolve().parents[2]

# What each process runs: the entry point's function with the arguments after the program
# name, exactly the argv a ROS 2 executable sees after argv[0].
_BOOTSTRAP = (
    "import importlib, sys; sys.argv[0] = {exec!r}; "
    "sys.exit(getattr(importlib.import_module({module!r}), {function!r})(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Executable:
    package: str
    name: str
    target: str  # "module:function"

    def command(self) -> list[str]:
        """The argv prefix that starts this executable (ROS arguments follow)."""
        module, _, function = self.target.partition(":")
        code = _BOOTSTRAP.format(exec=self.name, module=module, function=function or "main")
        return [sys.executable, "-c", code]


def known_executables() -> dict[str, str]:
    """exec name -> ``module:function`` for package robot_learning."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    extra = os.environ.get(EXTRA_EXECUTABLES_ENV, "")
    for item in filter(None, (x.strip() for x in extra.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise LaunchError(f"{EXTRA_EXECUTABLES_ENV}: {item!r} is not 'exec=module:function'")
        found[name.strip()] = target.strip()
    return found


def resolve(package: str, name: str, where: str) -> Executable:
    if package != PACKAGE:
        raise LaunchError(
            f"{where}: package {package!r} is unknown to rl launch, which runs the nodes of "
            f"{PACKAGE!r}; run files that start other packages' nodes with ros2 launch"
        )
    known = known_executables()
    if name not in known:
        raise LaunchError(
            f"{where}: package {package!r} has no executable {name!r} (known: "
            f"{', '.join(sorted(known)) or 'none; is the project installed (pip install -e .)?'})"
        )
    return Executable(package, name, known[name])


def run(name: str) -> None:
    """Run executable ``name`` of robot_learning with this process's arguments and exit
    (what the colcon-installed wrappers in lib/robot_learning call)."""
    target = resolve(PACKAGE, name, f"executable {name!r}").target
    module, _, function = target.partition(":")
    sys.argv[0] = name
    sys.exit(getattr(importlib.import_module(module), function or "main")(sys.argv[1:]))


def find_package_share(package: str) -> Path:
    """The share directory ``$(find-pkg-share PKG)`` names.

    For robot_learning, the source tree this code runs from (it holds package.xml and
    launch/, as an installed share directory does); otherwise the ament prefixes.
    """
    if package == PACKAGE and (REPO_ROOT / "package.xml").is_file():
        return REPO_ROOT
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        share = Path(prefix) / "share" / package
        if (share / "package.xml").is_file():
            return share
    raise LaunchError(
        f"package {package!r} not found in {REPO_ROOT} (no package.xml) nor in any "
        "AMENT_PREFIX_PATH prefix (source a ROS 2 workspace's setup file to find installed "
        "packages)"
    )
