"""The runtime: what a policy sees (Observation), what it returns (ActionChunk), how a chunk
is executed at the control rate (ChunkExecutor), and the one control loop (``loop``) that
drives an arm from either a teleop device or a policy, lockstep or on the wall clock
(``robot_learning.sim.rollout.run_episode`` runs the simulator through it).

ROS-free and policy-agnostic: anything with ``reset()`` and ``act(observation)`` drives it.
"""

from robot_learning.runtime.chunk import ActionChunk
from robot_learning.runtime.executor import ChunkExecutor, ExecutionConfig
from robot_learning.runtime.observation import Observation, PolicyLike

__all__ = ["ActionChunk", "ChunkExecutor", "ExecutionConfig", "Observation", "PolicyLike"]
