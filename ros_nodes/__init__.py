"""ROS 2 nodes of the collection and deployment graphs, thin wrappers over the library.

``runtime`` is the node API with its two backends (rclpy, or pure RTPS over cyclonedds);
``msgs`` the ROS 2 wire types; ``topics`` the names; one module per executable
(``camera_node``, ``franka_node``, ``teleop_node``, ``sim_node``, ``recorder_node``, and for
deployment ``policy_node`` and ``arbiter_node``), each with ``main(argv) -> int``.
Conventions: ../shared/ROS_INTERFACES.md and the README.
"""
