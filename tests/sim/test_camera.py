"""Sim cameras: intrinsics + extrinsics agree with what MuJoCo renders, depth, frames."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robot_learning.hardware.camera import Camera
from robot_learning.sim.workcell import Workcell

SIZE = (480, 640)


@pytest.fixture(scope="module")
def workcell():
    with Workcell(
        task="stack", seed=5, cameras=("front", "wrist", "side"), image_size=SIZE
    ) as cell:
        yield cell


def project(camera, points_world: np.ndarray) -> np.ndarray:
    t_base_camera = camera.extrinsics
    t_camera_base = np.linalg.inv(t_base_camera)
    points_camera = points_world @ t_camera_base[:3, :3].T + t_camera_base[:3, 3]
    assert np.all(points_camera[:, 2] > 0), "points behind the camera"
    return camera.intrinsics.project(points_camera)


def polygon_centroid(points: np.ndarray) -> np.ndarray:
    """Area centroid of the convex hull of 2D points (monotone chain + shoelace)."""
    pts = sorted(map(tuple, points))

    def turn(o, a, b) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and turn(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    hull = np.array(half(pts) + half(pts[::-1]))
    x, y = hull[:, 0], hull[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2.0
    return np.array(
        [((x + np.roll(x, -1)) * cross).sum(), ((y + np.roll(y, -1)) * cross).sum()]
    ) / (6.0 * area)


def cube_corners(workcell, body) -> np.ndarray:
    geom = next(iter(body.geom_ids))
    half = workcell.model.geom_size[geom]
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    return (signs * half) @ workcell.data.geom_xmat[geom].reshape(3, 3).T + workcell.data.geom_xpos[
        geom
    ]


@pytest.mark.parametrize("camera_name", ["front", "side", "wrist"])
def test_projection_matches_rendered_silhouette(workcell, camera_name):
    """A cube's silhouette is the hull of its projected corners: centroids agree < 0.5 px."""
    camera = workcell.cameras[camera_name]
    assert isinstance(camera, Camera)
    renderer = mujoco.Renderer(workcell.model, *SIZE)
    renderer.enable_segmentation_rendering()
    renderer.update_scene(workcell.data, camera_name)
    segmentation = renderer.render()[:, :, 0]
    renderer.close()
    for body in (workcell.task.top, workcell.task.base):
        geom = next(iter(body.geom_ids))
        rows, cols = np.nonzero(segmentation == geom)
        assert rows.size > 200, f"{camera_name}: cube barely visible ({rows.size} px)"
        rendered = np.array([cols.mean(), rows.mean()])
        predicted = polygon_centroid(project(camera, cube_corners(workcell, body)))
        error_px = np.linalg.norm(rendered - predicted)
        assert error_px < 0.5, f"{camera_name}: centroid off by {error_px:.3f} px"


def test_intrinsics_from_fovy(workcell):
    intrinsics = workcell.cameras["front"].intrinsics
    fovy = np.radians(workcell.model.camera("front").fovy[0])
    assert (intrinsics.width, intrinsics.height) == (640, 480)
    assert intrinsics.fy == pytest.approx(240.0 / np.tan(fovy / 2))
    assert intrinsics.fx == intrinsics.fy
    assert (intrinsics.cx, intrinsics.cy) == (319.5, 239.5)


def test_extrinsics_are_optical_frame(workcell):
    t_base_camera = workcell.cameras["front"].extrinsics
    rotation = t_base_camera[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    look = np.array([0.4, 0.0, 0.2]) - t_base_camera[:3, 3]
    assert rotation[:, 2] @ look / np.linalg.norm(look) > 0.99  # z looks at the workspace
    assert rotation[2, 1] < -0.8  # image y (down) points down in the world (camera pitched)


def test_depth_unprojects_onto_the_table(workcell):
    camera = workcell.cameras["front"]
    depth_mm = workcell.render_depth(["front"])["front"]
    assert depth_mm.dtype == np.uint16 and depth_mm.shape == SIZE
    intrinsics, t_base_camera = camera.intrinsics, camera.extrinsics
    segmentation_free_rows = [300, 400, 470]  # table in front of the cubes
    for row in segmentation_free_rows:
        z = depth_mm[row, 320] / 1000.0
        point_camera = np.array(
            [
                (320 - intrinsics.cx) / intrinsics.fx * z,
                (row - intrinsics.cy) / intrinsics.fy * z,
                z,
            ]
        )
        point_world = t_base_camera[:3, :3] @ point_camera + t_base_camera[:3, 3]
        assert point_world[2] == pytest.approx(0.0, abs=0.003), f"row {row}: {point_world}"


def test_camera_read_gives_timestamped_frames(workcell):
    camera = workcell.cameras["wrist"]
    first = camera.read()
    workcell.step(workcell.home_target())
    second = camera.read_latest(max_age_s=0.05)
    assert first.color.shape == (*SIZE, 3) and first.color.dtype == np.uint8
    assert second.frame_index == first.frame_index + 1
    assert second.timestamp_s == pytest.approx(first.timestamp_s + 0.01)
    assert first.color.std() > 5.0  # a real image, not a blank buffer


def test_appearance_is_randomized_by_seed():
    with Workcell(task="lift", cameras=("front",)) as workcell:
        workcell.reset(1)
        a = workcell.cameras["front"].extrinsics
        image_a = workcell.render()["front"]
        workcell.reset(2)
        b = workcell.cameras["front"].extrinsics
        workcell.reset(1)
        np.testing.assert_array_equal(workcell.render()["front"], image_a)
    assert 0.0 < np.linalg.norm(a[:3, 3] - b[:3, 3]) < 0.03
