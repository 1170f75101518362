"""A "human hand" stand-in for the workcell: the human-video path exercised in simulation.

What it is, and why it looks the way it does:

- skin-coloured, a flat palm with a thumb and an index finger hanging below it and the
  three other fingers curled into it: nothing like the white two-finger gripper, so a
  policy cannot learn hand-vs-robot from colour or shape alone being similar;
- the palm is a free body welded (stiff, soft-constraint) to a mocap target that the
  demonstrator moves, as a person's arm places the hand; the thumb and the index finger
  each turn about one hinge (thumb CMC, index MCP) driven by position actuators, so the
  pinch closes on objects with a bounded force (about 4 N per finger on the cube) and
  friction lifts it;
- 21 sites in MediaPipe's landmark order (``hand_landmark_<i>``), the ground truth of the
  landmarks; the thumb tip (4), index tip (8) and index knuckle (5), which the motion
  tracks use, sit exactly at the fingertip centres and the index hinge. The others are
  placed like a hand's but only roughly.

Hand frame H: origin between the open fingertips, z up (palm above), y the pinch axis
(thumb at -y, index at +y), x the way the curled fingers point. ``SimHand.set_pose`` places
H in the base frame; the fingertip centres hang at z = 0 of H when the hinges are at 0.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_learning.geometry import make_transform, quat_wxyz_from_xyzw, quat_xyzw_from_mat, yaw_mat

HAND_BODY = "human_hand"
TARGET_BODY = "human_hand_target"  # mocap: where the person's arm puts the hand
HAND_JOINT = "human_hand_free"
THUMB_BODY = "human_thumb"
INDEX_BODY = "human_index"
THUMB_JOINT = "human_thumb_hinge"
INDEX_JOINT = "human_index_hinge"
THUMB_ACTUATOR = "human_thumb"
INDEX_ACTUATOR = "human_index"
LANDMARK_SITE = "hand_landmark_{}"
NUM_LANDMARKS = 21
SKIN_RGBA = "0.88 0.66 0.52 1"

FINGER_LENGTH_M = 0.10  # hinge to fingertip centre (thumb and index alike)
TIP_RADIUS_M = 0.009
FINGER_RADIUS_M = 0.008
INDEX_HINGE_H = (0.0, 0.04, FINGER_LENGTH_M)  # index MCP, landmark 5
THUMB_HINGE_H = (0.0, -0.04, FINGER_LENGTH_M)  # thumb CMC, landmark 1 (facing the index)
OPEN_ANGLE_RAD = 0.2  # fingertips ~6 cm either side of the centre
CLOSED_ANGLE_RAD = -0.5  # the squeeze target: beyond contact, so the pinch presses
HINGE_STIFFNESS_NM_PER_RAD = 1.0
PARK_POSITION_M = (0.2, 0.9, 0.4)  # beside the table, out of both fixed cameras' view
# The arm while a human demonstrates: turned away and folded low behind its base, so of
# the robot the fixed cameras see at most the base (a real lab moves the arm aside too).
PARKED_JOINTS_RAD = (2.7, 1.75, 0.0, -1.6, 0.0, 2.0, 0.785)


def add_hand(worldbody: ET.Element, root: ET.Element) -> None:
    """Add the hand (bodies, sites) and its two finger actuators to the MJCF."""
    ET.SubElement(worldbody, "body", name=TARGET_BODY, mocap="true", pos=_fmt(PARK_POSITION_M))
    hand = ET.SubElement(worldbody, "body", name=HAND_BODY, pos=_fmt(PARK_POSITION_M), gravcomp="1")
    ET.SubElement(hand, "freejoint", name=HAND_JOINT)
    ET.SubElement(hand, "inertial", pos="0 0 0.1", mass="0.4", diaginertia="0.001 0.001 0.001")
    skin = {"rgba": SKIN_RGBA, "contype": "0", "conaffinity": "0", "mass": "0"}
    z_palm = FINGER_LENGTH_M + 0.012
    ET.SubElement(
        hand,
        "geom",
        name="human_palm",
        type="ellipsoid",
        size="0.055 0.05 0.014",
        pos=_fmt((0.0, 0.0, z_palm)),
        **skin,
    )
    ET.SubElement(
        hand,
        "geom",
        name="human_wrist",
        type="capsule",
        size="0.022",
        fromto=_fmt((-0.05, 0, z_palm + 0.004, -0.12, 0, z_palm + 0.02)),
        **skin,
    )
    for i, y in enumerate((0.015, -0.008, -0.028)):  # middle, ring, pinky: curled
        base = np.array([0.05, y + 0.01, z_palm])
        bend = base + [0.025, 0.0, -0.03]
        tip = bend + [-0.02, 0.0, -0.012]
        ET.SubElement(
            hand,
            "geom",
            name=f"human_curled_{i}a",
            type="capsule",
            size="0.0075",
            fromto=_fmt((*base, *bend)),
            **skin,
        )
        ET.SubElement(
            hand,
            "geom",
            name=f"human_curled_{i}b",
            type="capsule",
            size="0.0075",
            fromto=_fmt((*bend, *tip)),
            **skin,
        )
    _add_landmark(hand, 0, (-0.07, 0.0, z_palm))
    # each finger hangs from its hinge; a positive angle turns it outwards (index to +y,
    # thumb to -y), so both fingers share one set of angles
    for finger, hinge, axis, first in (
        (INDEX_BODY, INDEX_HINGE_H, "1 0 0", 5),
        (THUMB_BODY, THUMB_HINGE_H, "-1 0 0", 1),
    ):
        body = ET.SubElement(hand, "body", name=finger, pos=_fmt(hinge), gravcomp="1")
        joint = INDEX_JOINT if finger == INDEX_BODY else THUMB_JOINT
        ET.SubElement(
            body,
            "joint",
            name=joint,
            type="hinge",
            axis=axis,
            damping="0.05",
            range=f"{CLOSED_ANGLE_RAD - 0.3} {OPEN_ANGLE_RAD + 0.2}",
        )
        contact = {"rgba": SKIN_RGBA, "friction": "1.2 0.01 0.001", "condim": "4", "mass": "0.02"}
        tip = (0.0, 0.0, -FINGER_LENGTH_M)  # hinge at 0: the finger hangs straight down
        ET.SubElement(
            body,
            "geom",
            name=f"{finger}_shaft",
            type="capsule",
            size=f"{FINGER_RADIUS_M}",
            fromto=_fmt((0, 0, 0, *tip)),
            **contact,
        )
        ET.SubElement(
            body,
            "geom",
            name=f"{finger}_tip",
            type="sphere",
            size=f"{TIP_RADIUS_M}",
            pos=_fmt(tip),
            **contact,
        )
        for k, fraction in enumerate((0.0, 0.4, 0.7, 1.0)):
            _add_landmark(body, first + k, (0.0, 0.0, -FINGER_LENGTH_M * fraction))
    for i, finger_first in enumerate((9, 13, 17)):  # curled fingers' landmarks
        y = (0.015, -0.008, -0.028)[i] + 0.01
        for k, point in enumerate(
            (
                (0.05, y, z_palm),
                (0.075, y, z_palm - 0.03),
                (0.065, y, z_palm - 0.037),
                (0.055, y, z_palm - 0.042),
            )
        ):
            _add_landmark(hand, finger_first + k, point)
    # A stiff weld to the mocap target: the hand is a dynamic body (contacts see its velocity,
    # so friction can lift what it pinches) that follows where it is put.
    equality = ET.SubElement(root, "equality")
    ET.SubElement(equality, "weld", body1=HAND_BODY, body2=TARGET_BODY, solref="0.01 1")
    actuators = ET.SubElement(root, "actuator")
    for name, joint in ((THUMB_ACTUATOR, THUMB_JOINT), (INDEX_ACTUATOR, INDEX_JOINT)):
        ET.SubElement(
            actuators,
            "position",
            name=name,
            joint=joint,
            kp=f"{HINGE_STIFFNESS_NM_PER_RAD}",
            ctrlrange=f"{CLOSED_ANGLE_RAD} {OPEN_ANGLE_RAD}",
        )


def _add_landmark(body: ET.Element, index: int, pos: tuple[float, float, float]) -> None:
    ET.SubElement(
        body, "site", name=LANDMARK_SITE.format(index), pos=_fmt(pos), size="0.004", group="4"
    )


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


@dataclass(frozen=True)
class HandPose:
    """Where the hand frame H is: position (m, base frame) and yaw about z (rad)."""

    position_m: np.ndarray
    yaw_rad: float

    def transform(self) -> np.ndarray:
        return make_transform(yaw_mat(self.yaw_rad), np.asarray(self.position_m, float))


class SimHand:
    """The stand-in in a compiled model: move it, pinch, read its landmarks."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model, self.data = model, data
        self._mocap = int(model.body_mocapid[model.body(TARGET_BODY).id])
        joint = model.joint(HAND_JOINT).id
        self._free_qpos = int(model.jnt_qposadr[joint])
        self._free_qvel = int(model.jnt_dofadr[joint])
        self._actuators = [model.actuator(n).id for n in (THUMB_ACTUATOR, INDEX_ACTUATOR)]
        self._joints = [
            int(model.jnt_qposadr[model.joint(n).id]) for n in (THUMB_JOINT, INDEX_JOINT)
        ]
        self._sites = [model.site(LANDMARK_SITE.format(i)).id for i in range(NUM_LANDMARKS)]
        finger_bodies = {model.body(n).id for n in (THUMB_BODY, INDEX_BODY)}
        self.finger_geoms = frozenset(
            g for g in range(model.ngeom) if model.geom_bodyid[g] in finger_bodies
        )

    def park(self) -> None:
        """Out of view, fingers open (the start of every hand episode)."""
        self.place(HandPose(np.array(PARK_POSITION_M), 0.0))

    def place(self, pose: HandPose) -> None:
        """Put the hand at ``pose`` at once, at rest, fingers open (no motion in between)."""
        self.set_pose(pose)
        self.data.qpos[self._free_qpos : self._free_qpos + 3] = pose.position_m
        self.data.qpos[self._free_qpos + 3 : self._free_qpos + 7] = _quat_wxyz(pose.yaw_rad)
        self.data.qvel[self._free_qvel : self._free_qvel + 6] = 0.0
        for joint in self._joints:
            self.data.qpos[joint] = OPEN_ANGLE_RAD
        self.set_closure(0.0)

    def set_pose(self, pose: HandPose) -> None:
        """Where the hand should be; the weld pulls it there within a few milliseconds."""
        self.data.mocap_pos[self._mocap] = pose.position_m
        self.data.mocap_quat[self._mocap] = _quat_wxyz(pose.yaw_rad)

    def set_closure(self, closure: float) -> None:
        """0 open .. 1 squeezing (the fingers stop where an object is in the way)."""
        closure = float(np.clip(closure, 0.0, 1.0))
        angle = OPEN_ANGLE_RAD + closure * (CLOSED_ANGLE_RAD - OPEN_ANGLE_RAD)
        self.data.ctrl[self._actuators] = angle

    def landmarks(self) -> np.ndarray:
        """(21, 3) landmark positions in the base frame (= world), MediaPipe order."""
        return self.data.site_xpos[self._sites].copy()

    def finger_angles_rad(self) -> np.ndarray:
        """(thumb, index) hinge angles; positive = open."""
        return self.data.qpos[self._joints].copy()

    def T_base_hand(self) -> np.ndarray:
        """Where the hand frame H actually is (it lags its target slightly under load)."""
        body = self.data.body(HAND_BODY)
        return make_transform(body.xmat.reshape(3, 3).copy(), body.xpos.copy())


def _quat_wxyz(yaw_rad: float) -> np.ndarray:
    return quat_wxyz_from_xyzw(
        quat_xyzw_from_mat(yaw_mat(yaw_rad), hemisphere=np.array([0.0, 0.0, 0.0, 1.0]))
    )
