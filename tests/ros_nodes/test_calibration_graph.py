"""calibration_node over real DDS on loopback, against the simulator's ground truth.

Graph: sim_node (empty workcell, a ChArUco board, one camera through a distorting, noisy
lens, JPEG on the wire) and calibration_node in auto mode: it drives the arm through its
planned poses on /franka/target_pose, captures a view per pose, solves (eye-to-hand for the
front camera and the board on the gripper, eye-in-hand for the wrist camera and the board on
the table), saves the file and latches the result on /tf_static. A subscriber that joins
only after the result was published still gets it (transient local), and what it gets is
the saved file and is close to the simulator's true camera pose.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from calibration.calibration_file import WorkcellCalibration
from calibration.poses import PoseVisitor
from calibration.sim import SimCalibrationConfig, plan_poses
from robot_learning.geometry import pose_from_transform, transform_error, transform_from_pose
from robot_learning.sim.camera import REALISTIC_LENS
from robot_learning.sim.workcell import Workcell
from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import LATCHED, SENSOR_DATA
from tests.ros_nodes.graph import wait_for
from tests.ros_nodes.observer import Observer

pytestmark = pytest.mark.slow
SEED = 3
SIZE = {"width": 640, "height": 480}
VIEWS = 8


def _truth(camera: str, seed: int) -> tuple[np.ndarray, object]:
    """The simulator's true pose (T_base_camera, or T_hand_camera on the hand) and
    intrinsics of ``camera`` for ``seed``."""
    with Workcell(
        task="empty", seed=seed, cameras=(camera,), image_size=(SIZE["height"], SIZE["width"])
    ) as workcell:
        workcell.reset(seed)
        pose = (
            workcell.true_T_hand_camera(camera)
            if camera == "wrist"
            else workcell.true_T_base_camera(camera)
        )
        return pose, workcell.camera(camera).intrinsics


def _start_sim(graph, camera: str, board: str) -> None:
    """sim_node with ``board`` in an empty workcell and ``camera`` through the realistic lens,
    JPEG on the wire."""
    params = {
        "task": "empty",
        "seed": SEED,
        "cameras": [camera],
        **SIZE,
        "camera_hz": 10.0,
        "publish_raw": False,
        "jpeg_quality": 95,
        "boards": board,
        "lens": "realistic",
    }
    graph.start("sim_node", "sim", params=params)


def _front_camera_poses(views: int) -> list[np.ndarray]:
    """The hand poses that show the front camera the board on the gripper, ``views`` of them."""
    config = SimCalibrationConfig(
        seed=SEED, views=views, wrist_cameras=(), fixed_cameras=("front",)
    )
    return plan_poses(config, "gripper", ["front"], np.random.default_rng([SEED, 7]))


@pytest.mark.parametrize(
    ("camera", "board", "parent"),
    [
        ("front", "gripper", topics.BASE_FRAME),  # eye-to-hand
        ("wrist", "table", topics.TCP_FRAME),  # eye-in-hand
    ],
)
def test_auto_calibration_lands_on_tf_static(graph, tmp_path, camera, board, parent):
    out = tmp_path / "calibration" / "sim.yaml"
    _start_sim(graph, camera, board)
    graph.start(
        "calibration_node",
        "calibration",
        params={
            "mode": "auto",
            "cameras": [camera],
            "board": board,
            "views": VIEWS,
            "seed": SEED,
            "workcell": "sim",
            "out": str(out),
        },
    )
    status = Observer("status_watcher")
    status.status(msgs.String, topics.CALIBRATION_STATUS)
    status.start()
    progress: list[int] = []

    def finished() -> bool:
        s = status.latest_status.get(topics.CALIBRATION_STATUS, {})
        progress.append(s.get("captured", 0))
        return s.get("state") in ("done", "failed")

    try:
        started = time.monotonic()
        wait_for(finished, 75.0, "calibration_node to finish", graph)
        took_s = time.monotonic() - started
        final = status.latest_status[topics.CALIBRATION_STATUS]
    finally:
        status.close()
    assert final["state"] == "done", (final, graph.log("calibration")[-3000:])
    assert final["planned"] == VIEWS and final["captured"] + len(final["skipped"]) == VIEWS
    assert final["views"][camera] >= VIEWS - 1, final
    seen = set(progress) & set(range(1, VIEWS))
    assert len(seen) >= VIEWS // 2, f"status reports progress view by view, saw {seen}"
    residuals = final["residuals"][camera]
    assert residuals["hand_eye"]["rms_px"] < 0.5 and residuals["holdout"]["passed"]

    # A subscriber that joins after the result was latched still receives it.
    late = Observer("late_tf_listener")
    late.collect(msgs.TFMessage, topics.TF_STATIC, LATCHED)
    late.collect(msgs.CameraInfo, topics.calibrated_camera_info(camera), LATCHED)
    late.start()
    try:
        wait_for(
            lambda: (
                late.snapshot(topics.TF_STATIC)
                and late.snapshot(topics.calibrated_camera_info(camera))
            ),
            10.0,
            "the latched /tf_static and camera_info",
            graph,
        )
        tf = late.snapshot(topics.TF_STATIC)[0]
        info = late.snapshot(topics.calibrated_camera_info(camera))[0]
    finally:
        late.close()
    (published,) = tf.transforms
    assert published.header.frame_id == parent
    assert published.child_frame_id == topics.CameraTopics(camera).optical_frame
    T_published = convert.transform_matrix(published)

    saved = WorkcellCalibration.load(out).cameras[camera]
    np.testing.assert_allclose(T_published, saved.pose, atol=1e-9)
    assert convert.intrinsics(info).fx == pytest.approx(saved.intrinsics.fx, abs=1e-9)

    T_true, K_true = _truth(camera, SEED)
    error_m, error_rad = transform_error(T_published, T_true)
    print(
        f"calibration graph, {camera}: {final['captured']} views in {took_s:.1f} s; hand-eye "
        f"{1000 * error_m:.2f} mm, {np.degrees(error_rad):.3f} deg; fx "
        f"{info.k[0]:.1f} vs {K_true.fx:.1f}"
    )
    # 8 JPEG views at 640x480 (the library gets ~0.6 mm, 0.06 deg for the front camera from
    # 8 lossless views); bars loose enough for JPEG and timing, tight enough to matter.
    assert error_m < 0.004 and np.degrees(error_rad) < 0.4
    assert abs(info.k[0] - K_true.fx) / K_true.fx < 0.01
    assert np.hypot(info.k[2] - K_true.cx, info.k[5] - K_true.cy) < 5.0
    assert graph.stop("calibration") == 0


def _guide_to(obs: Observer, target_pub, T: np.ndarray, graph, timeout_s: float = 10.0) -> None:
    """Stand-in for a person guiding the arm: command the pose until the hand rests on it."""
    position, quaternion = pose_from_transform(T)
    steady_since = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        target_pub.publish(convert.pose_stamped(position, quaternion, time.time()))
        time.sleep(0.05)
        hand = obs.snapshot(topics.EE_POSE)
        if not hand:
            continue
        v = hand[-1]
        on_target = transform_error(transform_from_pose(v[:3], v[3:]), T)[0] < 0.0015
        steady_since = (steady_since or time.monotonic()) if on_target else None
        if steady_since is not None and time.monotonic() - steady_since > 0.4:
            return
        graph.assert_alive()
    raise AssertionError(f"the arm did not reach {position} within {timeout_s} s")


def test_manual_capture_on_joy_and_command_then_publish_mode_replays_the_file(graph, tmp_path):
    """Manual mode: the operator (here the test, guiding the arm) captures each view with the
    Joy button or ``capture`` on /calibration/command; the node solves after ``views``.
    Then a calibration_node in publish mode latches the saved file on /tf_static."""
    out = tmp_path / "sim.yaml"
    views = 7
    _start_sim(graph, "front", "gripper")
    graph.start(
        "calibration_node",
        "calibration",
        params={
            "mode": "manual",
            "cameras": ["front"],
            "board": "gripper",
            "views": views,
            "out": str(out),
            "capture_button": topics.JoyButton.START,
        },
    )
    poses = _front_camera_poses(views)
    obs = Observer("operator")
    obs.collect(msgs.PoseStamped, topics.EE_POSE, keep=convert.pose_vector)
    obs.status(msgs.String, topics.CALIBRATION_STATUS)
    target = obs.publisher(msgs.PoseStamped, topics.TARGET_POSE)
    joy = obs.publisher(msgs.Joy, topics.JOY)
    command = obs.publisher(msgs.String, topics.CALIBRATION_COMMAND)
    obs.start()

    def status() -> dict:
        return obs.latest_status.get(topics.CALIBRATION_STATUS, {})

    try:
        wait_for(
            lambda: (
                status().get("state") == "capturing"
                and joy.subscription_count() > 0
                and command.subscription_count() > 0
            ),
            30.0,
            "calibration inputs",
            graph,
        )
        for i, T in enumerate(poses):
            _guide_to(obs, target, T, graph)
            if i % 2 == 0:
                buttons = [0] * topics.JoyButton.COUNT
                for pressed in (1, 0):  # press and release
                    buttons[topics.JoyButton.START] = pressed
                    joy.publish(
                        msgs.Joy(header=convert.header(time.time(), ""), buttons=list(buttons))
                    )
                    time.sleep(0.05)
            else:
                command.publish(msgs.String(data="capture"))
            wait_for(lambda i=i: status().get("captured", 0) > i, 10.0, f"view {i}", graph)
        wait_for(lambda: status().get("state") in ("done", "failed"), 30.0, "the solve", graph)
    finally:
        obs.close()
    final = status()
    assert final["state"] == "done", (final, graph.log("calibration")[-3000:])
    assert final["views"]["front"] >= views - 1
    saved = WorkcellCalibration.load(out).cameras["front"]
    T_true, _ = _truth("front", SEED)
    error_m, error_rad = transform_error(saved.pose, T_true)
    assert error_m < 0.004 and np.degrees(error_rad) < 0.4
    assert graph.stop("calibration") == 0

    graph.start(
        "calibration_node",
        "replay",
        params={"mode": "publish", "cameras": ["front"], "out": str(out)},
    )
    late = Observer("tf_listener")
    late.collect(msgs.TFMessage, topics.TF_STATIC, LATCHED)
    late.start()
    try:
        wait_for(lambda: late.snapshot(topics.TF_STATIC), 20.0, "the replayed /tf_static", graph)
        (published,) = late.snapshot(topics.TF_STATIC)[0].transforms
    finally:
        late.close()
    np.testing.assert_allclose(convert.transform_matrix(published), saved.pose, atol=1e-9)


def test_bad_input_is_explained(graph, tmp_path):
    """A board the camera cannot see exits 2 naming the fix; silent topics and a second
    command publisher end the session with the reason on /calibration/status."""
    graph.start(
        "calibration_node", "wrong_board", params={"cameras": ["wrist"], "board": "gripper"}
    )
    assert graph.procs["wrong_board"].wait(30) == 2
    assert "hand cameras calibrate against board:=table" in graph.log("wrong_board")
    graph.stopped.add("wrong_board")

    obs = Observer("watcher")
    obs.status(msgs.String, topics.CALIBRATION_STATUS)
    obs.start()

    def status() -> dict:
        return obs.latest_status.get(topics.CALIBRATION_STATUS, {})

    try:
        graph.start(
            "calibration_node",
            "calibration",
            params={
                "cameras": ["front"],
                "views": 6,
                "input_timeout_s": 2.0,
                "out": str(tmp_path / "never.yaml"),
            },
        )
        wait_for(lambda: status().get("state") == "failed", 30.0, "the input timeout", graph)
        assert "/camera/front/color/image_raw/compressed" in status()["error"]
        assert topics.EE_POSE in status()["error"]
        graph.stop("calibration")

        graph.start(
            "sim_node",
            "sim",
            params={
                "task": "empty",
                "seed": SEED,
                "cameras": ["front"],
                "width": 160,
                "height": 120,
                "publish_raw": False,
                "boards": "gripper",
            },
        )
        graph.start(
            "calibration_node",
            "calibration2",
            params={  # a session of ~30 s
                "cameras": ["front"],
                "views": 30,
                "out": str(tmp_path / "never.yaml"),
            },
        )
        wait_for(lambda: status().get("state") == "capturing", 30.0, "the session", graph)
        # a second command publisher (a teleop node left running): the bridge holds the arm
        intruder = obs.publisher(msgs.PoseStamped, topics.TARGET_POSE)  # kept: alive while held
        wait_for(lambda: status().get("state") == "failed", 15.0, "the hold to end it", graph)
        assert "only publisher on /franka/target_pose" in status()["error"]
        assert "2 publishers" in status()["error"] and "/watcher" in status()["error"]
        del intruder
    finally:
        obs.close()
    assert not (tmp_path / "never.yaml").exists()


def test_manual_without_a_robot_gives_intrinsics_only(graph, tmp_path):
    """A hand-held board and no robot bridge: views on ``capture``, intrinsics out as the
    latched CameraInfo, no transforms and no file. The "person" moving the board is the
    test: it poses the simulated arm holding the board (lockstep, in this process) and
    publishes each MuJoCo render on the camera's topic, as a camera_node would."""
    out = tmp_path / "never.yaml"
    views = 7
    graph.start(
        "calibration_node",
        "calibration",
        params={
            "mode": "manual",
            "cameras": ["front"],
            "board": "gripper",
            "views": views,
            "out": str(out),
        },
    )
    obs = Observer("person")
    obs.status(msgs.String, topics.CALIBRATION_STATUS)
    info_topic = topics.calibrated_camera_info("front")
    obs.collect(msgs.CameraInfo, info_topic, LATCHED)
    camera = obs.node.create_publisher(
        msgs.CompressedImage, topics.CameraTopics("front").compressed, SENSOR_DATA
    )
    command = obs.publisher(msgs.String, topics.CALIBRATION_COMMAND)
    obs.start()

    def status() -> dict:
        return obs.latest_status.get(topics.CALIBRATION_STATUS, {})

    poses = _front_camera_poses(views)
    with Workcell(
        task="empty",
        seed=SEED,
        cameras=("front",),
        boards=("gripper",),
        image_size=(SIZE["height"], SIZE["width"]),
        lenses={"front": REALISTIC_LENS},
    ) as workcell:
        workcell.reset(SEED)
        K_true = workcell.camera("front").intrinsics
        visitor = PoseVisitor(workcell.robot, wait=workcell.robot.advance)
        try:  # volatile topics: publish once the node is there to hear them
            wait_for(
                lambda: (
                    status().get("state") == "waiting"
                    and camera.subscription_count() > 0
                    and command.subscription_count() > 0
                ),
                30.0,
                "calibration_node to subscribe",
                graph,
            )
            for i, T in enumerate(poses):
                assert visitor.move_to(T) is not None
                image = workcell.render(["front"])["front"]
                command.publish(msgs.String(data="capture"))
                for _ in range(3):  # a live stream: the node takes a frame after the request
                    time.sleep(0.1)
                    camera.publish(convert.compressed_image(image, time.time(), "front", 95))
                wait_for(lambda i=i: status().get("captured", 0) > i, 10.0, f"view {i}", graph)
            wait_for(lambda: obs.snapshot(info_topic), 20.0, "the calibrated CameraInfo", graph)
        finally:
            obs.close()
    final = status()
    assert final["state"] == "done" and final["views"]["front"] >= views - 1, final
    info = convert.intrinsics(obs.snapshot(info_topic)[0])
    assert abs(info.fx - K_true.fx) / K_true.fx < 0.01
    assert np.hypot(info.cx - K_true.cx, info.cy - K_true.cy) < 5.0
    assert not out.exists()
