"""The workcell's MJCF: franky-sim's FR3 on a table, lights, cameras, and a task's objects.

The robot base (``fr3_link0``) sits at the world origin on the table top (z = 0), so world
coordinates *are* base-frame coordinates. Changes to the shipped FR3 model, and why:

- arm bodies get ``gravcomp`` (the real arm's controller compensates gravity, so a joint
  servo tracks exactly instead of sagging by torque/kp);
- a ``tcp`` site 0.1034 m beyond the flange (the hand TCP of the real arm);
- the hand actuator is a stiffer position servo on the finger tendon with a 70 N limit,
  like the real gripper's grasp force (the shipped one squeezes with about 2 N);
- visual meshes come from the light copies (see ``meshes.py``); shadows are off.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from robot_learning.charuco_board import GRIPPER_BOARD, TABLE_BOARD, CharucoBoardSpec
from robot_learning.geometry import make_transform, quat_wxyz_from_xyzw, quat_xyzw_from_mat
from robot_learning.sim.meshes import franky_sim_assets_dir, visual_mesh_file

# Names in the model (constants, so a typo is an import error).
TCP_SITE = "tcp"
HAND_BODY = "hand"
TABLE_GEOM = "table"
HAND_ACTUATOR = "hand"
ARM_JOINTS = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")
FINGER_BODIES = ("left_finger", "right_finger")  # +y and -y of the hand: finger_a, finger_b
KEY_LIGHT = "key_light"
FILL_LIGHT = "fill_light"

TCP_OFFSET_M = 0.1034
PHYSICS_TIMESTEP_S = 0.002
TABLE_HALF_SIZE_M = (0.45, 0.6, 0.02)
TABLE_CENTER_XY_M = (0.45, 0.0)
GRIPPER_MAX_WIDTH_M = 0.08
GRIPPER_FORCE_LIMIT_N = 70.0
GRIPPER_STIFFNESS_N_PER_M = 3000.0
# Home pose of franky-sim (and of the real arm's "ready" pose): TCP pointing down.
HOME_JOINTS_RAD = (0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785)


@dataclass(frozen=True)
class CameraSpec:
    """A camera in the scene: pose given by eye and look-at point in its parent's frame."""

    name: str
    fovy_deg: float
    eye_m: tuple[float, float, float]
    look_at_m: tuple[float, float, float]
    parent_body: str | None = None  # None: fixed in the world
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)


FRONT_CAMERA = CameraSpec("front", 45.0, (1.35, 0.0, 0.8), (0.4, 0.0, 0.2))
SIDE_CAMERA = CameraSpec("side", 45.0, (0.45, -1.05, 0.65), (0.45, 0.0, 0.12))
# A D405-like camera on the hand, beside the fingers, looking down past the fingertips.
WRIST_CAMERA = CameraSpec(
    "wrist", 58.0, (0.08, 0.0, 0.03), (0.0, 0.0, 0.2), parent_body=HAND_BODY, up=(1.0, 0.0, 0.0)
)
CAMERA_SPECS: dict[str, CameraSpec] = {
    spec.name: spec for spec in (FRONT_CAMERA, WRIST_CAMERA, SIDE_CAMERA)
}
HAND_CAMERAS = tuple(name for name, spec in CAMERA_SPECS.items() if spec.parent_body == HAND_BODY)


@dataclass(frozen=True)
class BoardMount:
    """Where a ChArUco board sits: on the gripper (seen by the fixed cameras, eye-to-hand) or
    on the table (seen by the wrist camera, eye-in-hand). ``T_parent_board`` places the board
    frame (see robot_learning.charuco_board) in the hand body or in the world."""

    name: str
    board: CharucoBoardSpec
    T_parent_board: np.ndarray
    parent_body: str | None  # None: the world (table)


def _gripper_board_pose(board: CharucoBoardSpec) -> np.ndarray:
    """Board plate below the fingertips, facing hand (+x, +y): towards the front and side
    cameras when the hand points down; 7 cm in front of the fingers so they never hide it."""
    normal = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    y_axis = np.array([0.0, 0.0, 1.0])  # printed "down" along the hand's z (down at home)
    z_axis = -normal
    x_axis = np.cross(y_axis, z_axis)
    center = np.array([0.0, 0.0, TCP_OFFSET_M + 0.06]) + 0.07 * normal
    width, height = board.size_m
    origin = center - x_axis * width / 2 - y_axis * height / 2
    return make_transform(np.stack([x_axis, y_axis, z_axis], axis=1), origin)


def _table_board_pose(board: CharucoBoardSpec) -> np.ndarray:
    """Board lying on the table in front of the robot, printed face up."""
    x_axis, y_axis, z_axis = (
        np.array([0.0, 1.0, 0.0]),
        np.array([1.0, 0.0, 0.0]),
        np.array([0.0, 0.0, -1.0]),
    )
    center = np.array([0.5, 0.0, 0.001])
    width, height = board.size_m
    origin = center - x_axis * width / 2 - y_axis * height / 2
    return make_transform(np.stack([x_axis, y_axis, z_axis], axis=1), origin)


BOARD_MOUNTS: dict[str, BoardMount] = {
    "gripper": BoardMount("gripper", GRIPPER_BOARD, _gripper_board_pose(GRIPPER_BOARD), HAND_BODY),
    "table": BoardMount("table", TABLE_BOARD, _table_board_pose(TABLE_BOARD), None),
}
BOARD_PX_PER_SQUARE = 96


def board_texture_file(mount: BoardMount) -> str:
    return f"charuco_{mount.name}.png"


def board_textures(mounts: Sequence[str]) -> dict[str, bytes]:
    """PNG bytes of each mounted board's texture, made by OpenCV (MuJoCo ``assets``)."""
    import cv2

    textures = {}
    for name in mounts:
        mount = BOARD_MOUNTS[name]
        image = mount.board.image(px_per_square=BOARD_PX_PER_SQUARE)
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise RuntimeError(f"could not encode the {name} board texture as PNG")
        textures[board_texture_file(mount)] = png.tobytes()
    return textures


def _add_board(parent: ET.Element, asset: ET.Element, mount: BoardMount) -> None:
    """A visual-only textured quad: the board and its white margin, exactly to scale."""
    width, height = mount.board.size_m
    margin = mount.board.square_m / 2  # board.image's default margin: half a square
    x0, y0, x1, y1 = -margin, -margin, width + margin, height + margin
    name = f"charuco_{mount.name}"
    ET.SubElement(asset, "texture", name=name, type="2d", file=board_texture_file(mount))
    ET.SubElement(asset, "material", name=name, texture=name, specular="0", shininess="0")
    ET.SubElement(
        asset, "mesh", name=name, inertia="shell",
        vertex=_fmt((x0, y0, 0, x1, y0, 0, x1, y1, 0, x0, y1, 0)),
        texcoord="0 0  1 0  1 1  0 1", face="0 2 1  0 3 2",
    )  # fmt: skip
    ET.SubElement(
        parent, "geom", name=name, type="mesh", mesh=name, material=name, mass="0",
        contype="0", conaffinity="0", pos=_fmt(mount.T_parent_board[:3, 3]),
        quat=_fmt(quat_wxyz_from_xyzw(quat_xyzw_from_mat(mount.T_parent_board[:3, :3]))),
    )  # fmt: skip


def look_at_xyaxes(eye: Sequence[float], target: Sequence[float], up: Sequence[float]) -> str:
    """MJCF ``xyaxes`` for a camera at ``eye`` looking at ``target`` (MuJoCo looks along -z)."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f"camera up {up} is parallel to its viewing direction {forward}")
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    return " ".join(f"{v:.6f}" for v in (*right, *cam_up))


def nominal_camera_pose(spec: CameraSpec) -> np.ndarray:
    """The camera's optical frame (x right, y down, z forward) as designed, without the
    per-seed perturbation: T_base_camera for a fixed camera, T_hand_camera (hand = TCP) for
    one on the hand. What a lab knows from its CAD drawing; calibration starts from it."""
    forward = np.asarray(spec.look_at_m, float) - np.asarray(spec.eye_m, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(spec.up, float))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = make_transform(np.stack([right, down, forward], axis=1), spec.eye_m)
    if spec.parent_body == HAND_BODY:
        pose[2, 3] -= TCP_OFFSET_M  # from the hand body's origin to the TCP
    return pose


def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{v:.9g}" for v in values)


def _load_robot(*, light_meshes: bool) -> ET.Element:
    """franky-sim's fr3.xml with absolute mesh paths and the changes listed above."""
    assets = franky_sim_assets_dir()
    root = ET.parse(assets / "fr3.xml").getroot()
    compiler = root.find("compiler")
    if compiler is not None:
        compiler.attrib.pop("meshdir", None)
    for mesh in root.iter("mesh"):
        file_name = mesh.get("file", "")
        if file_name.endswith(".obj"):
            mesh.set("file", str(visual_mesh_file(file_name, light=light_meshes)))
        else:
            mesh.set("file", str(assets / "meshes" / file_name))
    for body in root.find("worldbody").iter("body"):
        if body.get("name") not in ("base", "fr3_link0"):
            body.set("gravcomp", "1")
    hand = next(b for b in root.iter("body") if b.get("name") == HAND_BODY)
    ET.SubElement(hand, "site", name=TCP_SITE, pos=f"0 0 {TCP_OFFSET_M}", group="4")
    actuators = root.find("actuator")
    for act in list(actuators):
        if act.get("name") == HAND_ACTUATOR:
            actuators.remove(act)
    # Tendon "split" is half the finger width; ctrl is the commanded width in metres.
    k = GRIPPER_STIFFNESS_N_PER_M
    ET.SubElement(
        actuators,
        "general",
        name=HAND_ACTUATOR,
        tendon="split",
        ctrlrange=f"0 {GRIPPER_MAX_WIDTH_M}",
        forcerange=f"{-GRIPPER_FORCE_LIMIT_N} {GRIPPER_FORCE_LIMIT_N}",
        gainprm=f"{k / 2}",
        biastype="affine",
        biasprm=f"0 {-k} {-0.05 * k}",
    )
    return root


def _add_camera(parent: ET.Element, spec: CameraSpec) -> None:
    ET.SubElement(
        parent,
        "camera",
        name=spec.name,
        pos=_fmt(spec.eye_m),
        xyaxes=look_at_xyaxes(spec.eye_m, spec.look_at_m, spec.up),
        fovy=f"{spec.fovy_deg:g}",
    )


def _add_environment(root: ET.Element, worldbody: ET.Element, max_size: tuple[int, int]) -> None:
    visual = ET.SubElement(root, "visual")
    ET.SubElement(
        visual, "global", offheight=str(max_size[0]), offwidth=str(max_size[1]), fovy="45"
    )
    ET.SubElement(visual, "quality", shadowsize="0", offsamples="0")
    ET.SubElement(visual, "headlight", ambient="0.25 0.25 0.25", diffuse="0.3 0.3 0.3")
    asset = root.find("asset")
    ET.SubElement(asset, "material", name="table_wood", rgba="0.62 0.5 0.38 1")
    ET.SubElement(asset, "material", name="floor_gray", rgba="0.3 0.32 0.35 1")
    hx, hy, hz = TABLE_HALF_SIZE_M
    cx, cy = TABLE_CENTER_XY_M
    ET.SubElement(
        worldbody, "geom", name="floor", type="plane", size="3 3 0.1",
        pos="0 0 -0.75", material="floor_gray",
    )  # fmt: skip
    ET.SubElement(
        worldbody, "geom", name=TABLE_GEOM, type="box", size=_fmt((hx, hy, hz)),
        pos=_fmt((cx, cy, -hz)), material="table_wood", friction="0.6 0.005 0.0001",
    )  # fmt: skip
    ET.SubElement(
        worldbody, "light", name=KEY_LIGHT, pos="1.5 -1 2.5", dir="-0.5 0.35 -1",
        directional="true", diffuse="0.6 0.6 0.55", specular="0.1 0.1 0.1", castshadow="false",
    )  # fmt: skip
    ET.SubElement(
        worldbody, "light", name=FILL_LIGHT, pos="-1 1 2", dir="0.4 -0.4 -1",
        directional="true", diffuse="0.3 0.3 0.32", specular="0 0 0", castshadow="false",
    )  # fmt: skip


def build_scene_xml(
    *,
    add_objects: Callable[[ET.Element, ET.Element], None],
    max_image_size: tuple[int, int] = (480, 640),
    light_meshes: bool = True,
    boards: Sequence[str] = (),
    add_extras: Sequence[Callable[[ET.Element, ET.Element], None]] = (),
) -> str:
    """The complete MJCF text. ``add_objects(worldbody, asset)`` adds the task's objects;
    ``boards`` names ``BOARD_MOUNTS`` to add (their textures: ``board_textures``);
    ``add_extras(worldbody, root)`` adds more (the human hand stand-in, with actuators)."""
    robot = _load_robot(light_meshes=light_meshes)
    root = ET.Element("mujoco", model="fr3_workcell")
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    option = copy.deepcopy(robot.find("option"))
    option.set("timestep", f"{PHYSICS_TIMESTEP_S:g}")
    option.set("cone", "elliptic")
    option.set("impratio", "10")
    root.append(option)
    for section in ("default", "asset"):
        root.append(copy.deepcopy(robot.find(section)))
    worldbody = ET.SubElement(root, "worldbody")
    _add_environment(root, worldbody, max_image_size)
    for body in robot.find("worldbody"):
        worldbody.append(copy.deepcopy(body))
    hand = next(b for b in worldbody.iter("body") if b.get("name") == HAND_BODY)
    for spec in CAMERA_SPECS.values():
        _add_camera(hand if spec.parent_body == HAND_BODY else worldbody, spec)
    add_objects(worldbody, root.find("asset"))
    for name in boards:
        mount = BOARD_MOUNTS[name]
        _add_board(hand if mount.parent_body == HAND_BODY else worldbody, root.find("asset"), mount)
    for section in ("actuator", "tendon", "equality", "contact"):
        root.append(copy.deepcopy(robot.find(section)))
    for add in add_extras:
        add(worldbody, root)
    return ET.tostring(root, encoding="unicode")
