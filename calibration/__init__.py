"""Camera calibration: ChArUco intrinsics, hand-eye, camera-to-camera extrinsics, reports.

  detection.py        BoardDetector (OpenCV's CharucoDetector.detectBoard, matchImagePoints,
                      sub-pixel corners), board pose of a view (PnP)
  intrinsics.py       calibrate_intrinsics: cv2.calibrateCamera, per-view errors, rejected
                      views, coverage map; verify_intrinsics (factory values against views)
  handeye.py          solve_hand_eye: eye-in-hand / eye-to-hand, OpenCV's five methods, joint
                      least-squares refinement, outliers; holdout_check
  extrinsics.py       pair_extrinsics: camera-to-camera from shared views, against hand-eye
  poses.py            orbit_poses (diverse, safe), PoseVisitor (robot visits them),
                      manual_capture (hand-held board)
  procedure.py        one camera (intrinsics -> hand-eye -> check), a workcell's cameras
  calibration_file.py WorkcellCalibration: versioned YAML, CameraInfo, static transforms
  capture_dir.py      images + hand poses on disk, for offline runs
  sim.py              the whole procedure in the simulator, against its ground truth
  cli.py              rl calibrate intrinsics|handeye|extrinsics|check

The board definition shared with the simulator is robot_learning.charuco_board.
"""
