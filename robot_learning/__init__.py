"""Core library of the robot-learning stack: store, geometry, hardware, sim, runtime, CLI.

ROS-free by design: nothing under ``robot_learning`` imports ROS.
"""

__version__ = "0.1.0"
