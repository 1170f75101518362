"""Core library of the robot-learning stack. ROS-free by design: nothing here imports ROS.

- ``store/``: the demonstration store (Zarr): schema, writer, reader, recovery, validation,
  curation, sampler, normalization, codecs, frame files, rebuild (migrate/merge/compact),
  remote stores; ``rl store ...``.
- ``hardware/``: robot, camera and teleop-device interfaces and their implementations
  (franky, RealSense, OpenCV cameras, SpaceMouse, keyboard, scripted teleop).
- ``sim/``: the simulated workcell (lockstep MuJoCo FR3, tasks, experts, cameras) and
  the franky-sim server harness; ``rl sim ...``.
- ``runtime/``: observation, action chunks, the chunk executor, controllers, the one
  control loop, safety filter, intervention arbiter, asynchronous inference.
- ``limits/``: one limits file per robot. ``geometry``: rotations and transforms.
  ``keys``: every recorded/observed key name. ``charuco_board``: the calibration board.
- ``cli``: the ``rl`` command; ``errors``: the errors it reports and its exit statuses.
"""

__version__ = "0.1.0"
