"""The runtime: what a policy sees (Observation), what it returns (ActionChunk), how a chunk
is executed at the control rate (ChunkExecutor), and the rollout loop that drives a robot
from either a teleop device or a policy (``rollout.run_episode``).

ROS-free and policy-agnostic: anything with ``reset()`` and ``act(observation)`` drives it.
"""

from robot_learning.runtime.chunk import ActionChunk
from robot_learning.runtime.executor import ChunkExecutor, ExecutionConfig
from robot_learning.runtime.observation import Observation, PolicyLike

__all__ = ["ActionChunk", "ChunkExecutor", "ExecutionConfig", "Observation", "PolicyLike"]
