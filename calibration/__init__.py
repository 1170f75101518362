"""Camera calibration: ChArUco intrinsics, hand-eye, camera-to-camera extrinsics, reports.

Not implemented yet (a later issue). Results will be written as YAML and ROS CameraInfo and
read by the hardware layer as ``CameraIntrinsics`` and ``T_base_camera``.
"""
