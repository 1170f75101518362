"""Hands rendered by MuJoCo with known landmarks: the real hand detector's test images.

No photograph of a hand that the project may ship is installed by any of its packages (the
MediaPipe wheel ships its test code but not its test images), so the tests and the tracker
benchmark render one: skin-coloured capsules on the 21 MediaPipe landmarks (wrist, thumb
CMC-MCP-IP-tip, four fingers MCP-PIP-DIP-tip), a palm, a forearm, a plain background. The
landmarks are the capsule end points, so they are exact in the image; MediaPipe's own
landmarks sit at anatomical joint centres, a few pixels from these, which bounds how well
an error measured here speaks for real hands (see benchmarks/hand_tracker.py).

A right hand is built palm towards the camera, fingers up (image -v), thumb towards +u; a
left hand is its mirror image in 3D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SIZE = (480, 640)  # (H, W)
FOVY_DEG = 45.0
CAMERA_DISTANCE_M = 0.45

_MCP = {5: (0.030, 0.088), 9: (0.010, 0.092), 13: (-0.010, 0.088), 17: (-0.028, 0.080)}
_PHALANGES_M = {
    5: (0.040, 0.025, 0.020),
    9: (0.045, 0.028, 0.021),
    13: (0.042, 0.027, 0.021),
    17: (0.033, 0.019, 0.018),
}
_SPLAY_RAD = {5: 0.10, 9: 0.02, 13: -0.06, 17: -0.14}
_THUMB = (
    (0.022, 0.022, 0.005),
    (0.048, 0.042, 0.012),
    (0.066, 0.064, 0.016),
    (0.080, 0.084, 0.018),
)


@dataclass(frozen=True)
class HandPose:
    """Where a hand is: ``side`` right/left, centre offset (m, camera plane: x right, y up),
    ``roll_rad`` about the viewing axis, ``curl_rad`` per finger joint, ``depth_m`` towards
    the camera (bigger hand)."""

    side: str = "right"
    offset_m: tuple[float, float] = (0.0, 0.0)
    roll_rad: float = 0.0
    curl_rad: float = 0.2
    depth_m: float = 0.0


def landmarks_3d(pose: HandPose) -> np.ndarray:
    """(21, 3) landmark positions in the world (z towards the camera), metres."""
    pts = np.zeros((21, 3))
    for base, (x, y) in _MCP.items():
        p = np.array([x, y, 0.0])
        pts[base] = p
        angle = 0.0
        for j, length in enumerate(_PHALANGES_M[base]):
            angle += pose.curl_rad
            d = np.array(
                [np.sin(_SPLAY_RAD[base]), np.cos(angle) * np.cos(_SPLAY_RAD[base]), np.sin(angle)]
            )
            p = p + length * d / np.linalg.norm(d)
            pts[base + j + 1] = p
    pts[1:5] = _THUMB
    if pose.side == "left":
        pts[:, 0] *= -1.0
    c, s = np.cos(pose.roll_rad), np.sin(pose.roll_rad)
    pts[:, :2] = pts[:, :2] @ np.array([[c, s], [-s, c]])
    pts[:, 0] += pose.offset_m[0]
    pts[:, 1] += pose.offset_m[1] - 0.05
    pts[:, 2] += pose.depth_m
    return pts


def _hand_geoms(pts: np.ndarray, roll_rad: float) -> list[str]:
    geoms = []

    def capsule(a: np.ndarray, b: np.ndarray, radius: float) -> None:
        geoms.append(
            f'<geom type="capsule" fromto="{a[0]:.5f} {a[1]:.5f} {a[2]:.5f} '
            f'{b[0]:.5f} {b[1]:.5f} {b[2]:.5f}" size="{radius:.4f}" material="skin"/>'
        )

    for finger in (1, 5, 9, 13, 17):
        chain = ([0] if finger == 1 else []) + [finger, finger + 1, finger + 2, finger + 3]
        for k in range(len(chain) - 1):
            base_r = 0.008 if finger == 17 else 0.0095
            capsule(pts[chain[k]], pts[chain[k + 1]], base_r - 0.001 * k)
    for mcp in (5, 9, 13, 17):
        capsule(pts[0] + 0.5 * (pts[mcp] - pts[0]) * np.array([1.0, 0.2, 0.0]), pts[mcp], 0.014)
    capsule(pts[5], pts[17], 0.011)
    palm = 0.5 * (pts[0] + 0.5 * (pts[5] + pts[17]))
    deg = np.degrees(roll_rad)
    geoms.append(
        f'<geom type="ellipsoid" pos="{palm[0]:.5f} {palm[1]:.5f} {palm[2]:.5f}" '
        f'euler="0 0 {-deg:.3f}" size="0.040 0.048 0.013" material="skin"/>'
    )
    forearm = pts[0] + np.array([-np.sin(-roll_rad), -np.cos(-roll_rad), 0.0]) * 0.19
    capsule(forearm + [0, 0, -0.005], pts[0] + [0, 0, -0.005], 0.027)
    return geoms


def scene_xml(poses: list[HandPose], size: tuple[int, int] = IMAGE_SIZE) -> str:
    geoms = [g for p in poses for g in _hand_geoms(landmarks_3d(p), p.roll_rad)]
    return f"""<mujoco><visual><headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5"/>
<global offwidth="{size[1]}" offheight="{size[0]}"/></visual>
<asset><material name="skin" rgba="0.86 0.66 0.54 1" specular="0.1" shininess="0.2"/>
<material name="bg" rgba="0.35 0.4 0.45 1"/></asset>
<worldbody><light pos="0.2 0.3 0.6" dir="-0.3 -0.4 -1" diffuse="0.6 0.6 0.6"/>
<geom type="box" pos="0 0 -0.08" size="2 2 0.01" material="bg"/>
{chr(10).join(geoms)}
<camera name="cam" pos="0 0 {CAMERA_DISTANCE_M}" xyaxes="1 0 0 0 1 0" fovy="{FOVY_DEG}"/>
</worldbody></mujoco>"""


def project(points: np.ndarray, size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """World points -> (N, 2) pixels of the rendering camera (u right, v down)."""
    f = 0.5 * size[0] / np.tan(np.radians(FOVY_DEG) / 2.0)
    depth = CAMERA_DISTANCE_M - points[:, 2]
    return np.stack(
        [size[1] / 2.0 + f * points[:, 0] / depth, size[0] / 2.0 - f * points[:, 1] / depth], axis=1
    )


def render_hands(
    poses: list[HandPose], size: tuple[int, int] = IMAGE_SIZE
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """RGB uint8 image and each side's (21, 2) true pixel landmarks."""
    import mujoco

    model = mujoco.MjModel.from_xml_string(scene_xml(poses, size))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    with mujoco.Renderer(model, size[0], size[1]) as renderer:
        renderer.update_scene(data, camera="cam")
        image = renderer.render().copy()
    return image, {p.side: project(landmarks_3d(p), size).astype(np.float32) for p in poses}
