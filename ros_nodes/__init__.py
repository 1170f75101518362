"""ROS 2 nodes of the collection graph, thin wrappers over the library.

``runtime`` is the node API with its two backends (rclpy, or pure RTPS over cyclonedds);
``msgs`` the ROS 2 wire types; ``topics`` the names; one module per executable
(``camera_node``, ``franka_node``, ``teleop_node``, ``sim_node``, ``recorder_node``), each
with ``main(argv) -> int``. Conventions: ../shared/ROS_INTERFACES.md and the README.
"""
