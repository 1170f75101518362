"""Motion tracks (MT-pi): a few keypoints per camera view, for robot and human episodes.

- ``cameras``: an episode's calibrated cameras, projecting base-frame points to pixels;
- ``robot``: gripper fingertips and centre from the recorded poses and gripper width;
- ``human``: thumb tip, index tip and index knuckle from hand keypoints, grasp heuristic;
- ``label``: ``rl tracks label``, adding the track keys to a store's episodes.
"""
