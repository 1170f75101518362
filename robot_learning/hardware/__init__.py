"""Hardware interfaces (robot, camera, teleop device) and their implementations.

One clock: every ``timestamp_s`` is seconds on the *station clock*. For real hardware that is
the host's ``time.time()`` (CLOCK_REALTIME, seconds since the UNIX epoch), so samples from
different processes and the demonstration store line up; device clocks (RealSense hardware
timestamps, the robot's own time) are mapped onto it. The lockstep simulator's station clock
is simulated time (seconds since the workcell was created), advanced by ``step``.
"""

from robot_learning.hardware.camera import Camera, CameraFrame, CameraIntrinsics
from robot_learning.hardware.robot import CartesianTarget, Robot, RobotReflexError, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent

__all__ = [
    "Camera",
    "CameraFrame",
    "CameraIntrinsics",
    "CartesianTarget",
    "Robot",
    "RobotReflexError",
    "RobotState",
    "TeleopCommand",
    "TeleopDevice",
    "TeleopEvent",
]
