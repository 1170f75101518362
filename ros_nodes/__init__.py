"""ROS 2 nodes (rclpy or pure-RTPS over cyclonedds), thin wrappers over the library.

Not implemented yet (a later issue); conventions in ../shared/ROS_INTERFACES.md.
"""
