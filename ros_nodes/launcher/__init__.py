"""``rl launch``: ROS 2 YAML launch files run without ROS 2, one process per node.

``description`` reads a file into the nodes to start (strictly, like ``launch_yaml``),
``substitutions`` evaluates ``$(...)``, ``executables`` finds ``pkg``/``exec`` among the
installed entry points, ``processes`` starts and supervises the nodes.
"""

from ros_nodes.launcher.description import LaunchPlan, NodeSpec, load
from ros_nodes.launcher.processes import Launcher, node_command
from ros_nodes.launcher.substitutions import LaunchError

__all__ = ["LaunchError", "LaunchPlan", "Launcher", "NodeSpec", "load", "node_command"]
