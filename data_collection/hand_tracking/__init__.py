"""Hand tracking over human-video frames: per-frame 2D landmarks of both hands per view.

``base`` holds the interface every tracker implements and the containers the rest of the
stack reads (motion tracks, the store's ``hand_keypoints_<cam>`` keys).
"""
