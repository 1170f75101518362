"""Which RealSense cameras are connected, and librealsense's values in our terms.

Discovery (serial, product name, USB type) and the choice of the device to open; intrinsics
between ``rs.intrinsics`` and :class:`CameraIntrinsics` (OpenCV distortion order); raw z16
depth in device units to millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyrealsense2 as rs

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.camera import CameraIntrinsics

# librealsense distortion models whose five coefficients are OpenCV's (k1, k2, p1, p2, k3).
# The inverse model uses the same coefficients for the deprojection direction; D400 color
# sensors report it with (near-)zero coefficients, so it is passed through as well.
_OPENCV_COMPATIBLE_MODELS = {
    rs.distortion.none,
    rs.distortion.brown_conrady,
    rs.distortion.modified_brown_conrady,
    rs.distortion.inverse_brown_conrady,
}


class RealSenseNotFoundError(RobotLearningError, LookupError):
    """The requested RealSense is not connected (the message lists the ones that are)."""


@dataclass(frozen=True)
class RealSenseDeviceInfo:
    serial: str
    name: str
    usb_type: str


def connected_realsense_devices(context: rs.context | None = None) -> list[RealSenseDeviceInfo]:
    """Every RealSense librealsense can see now (serial, product name, USB type)."""
    infos = []
    for dev in (context or rs.context()).query_devices():

        def info(key: rs.camera_info, dev: rs.device = dev) -> str:
            return dev.get_info(key) if dev.supports(key) else "?"

        infos.append(
            RealSenseDeviceInfo(
                serial=info(rs.camera_info.serial_number),
                name=info(rs.camera_info.name),
                usb_type=info(rs.camera_info.usb_type_descriptor),
            )
        )
    return infos


def resolve_serial(requested: str | None, connected: list[str]) -> str:
    """The serial to open: ``requested`` if connected, else the only device, else an error."""
    if requested is not None:
        if requested in connected:
            return requested
        raise RealSenseNotFoundError(
            f"RealSense with serial {requested!r} is not connected; connected serials: "
            f"{sorted(connected) or 'none'}"
        )
    if len(connected) == 1:
        return connected[0]
    if not connected:
        raise RealSenseNotFoundError("no RealSense camera is connected")
    raise RealSenseNotFoundError(
        f"{len(connected)} RealSense cameras are connected ({sorted(connected)}); "
        "pass serial= to pick one"
    )


def intrinsics_from_rs(intr: rs.intrinsics) -> CameraIntrinsics:
    """librealsense intrinsics -> CameraIntrinsics (OpenCV distortion order)."""
    if intr.model not in _OPENCV_COMPATIBLE_MODELS:
        raise ValueError(
            f"RealSense distortion model {intr.model} has no OpenCV (k1, k2, p1, p2, k3) form"
        )
    return CameraIntrinsics(
        width=intr.width,
        height=intr.height,
        fx=intr.fx,
        fy=intr.fy,
        cx=intr.ppx,
        cy=intr.ppy,
        distortion=tuple(float(c) for c in intr.coeffs[:5]),
    )


def intrinsics_to_rs(intr: CameraIntrinsics) -> rs.intrinsics:
    """CameraIntrinsics -> librealsense intrinsics (Brown-Conrady, same coefficient order)."""
    out = rs.intrinsics()
    out.width, out.height = intr.width, intr.height
    out.fx, out.fy, out.ppx, out.ppy = intr.fx, intr.fy, intr.cx, intr.cy
    out.model = rs.distortion.brown_conrady
    out.coeffs = [float(c) for c in intr.distortion[:5]] + [0.0] * (5 - len(intr.distortion))
    return out


def depth_to_mm(raw: np.ndarray, depth_units_m: float) -> np.ndarray:
    """Raw z16 depth in device units -> uint16 millimetres (0 stays 'no depth')."""
    if abs(depth_units_m - 0.001) < 1e-9:
        return raw.astype(np.uint16, copy=True)
    mm = np.rint(raw.astype(np.float64) * (depth_units_m * 1000.0))
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)
