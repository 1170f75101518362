"""The ChArUco calibration board: one definition for the printed board, the simulator's
texture and the calibration code, so the three can never disagree.

Board frame (OpenCV's): origin at the top-left corner of the chessboard as printed, x to the
right along the squares, y down, z into the board; a camera sees the printed face when it
looks along the board's +z. Lengths in metres.
OpenCV is imported only when a board image or detector is needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CharucoBoardSpec:
    """squares_x by squares_y chessboard squares with ArUco markers in the white ones."""

    squares_x: int = 7
    squares_y: int = 5
    square_m: float = 0.035
    marker_m: float = 0.026
    dictionary: str = "DICT_4X4_50"

    def __post_init__(self) -> None:
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError(
                f"ChArUco board needs at least 3x3 squares, got {self.squares_x}x{self.squares_y}"
            )
        if not 0.0 < self.marker_m < self.square_m:
            raise ValueError(
                f"marker_m ({self.marker_m}) must be positive and smaller than "
                f"square_m ({self.square_m})"
            )

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the chessboard area."""
        return self.squares_x * self.square_m, self.squares_y * self.square_m

    @property
    def corner_count(self) -> int:
        """Inner chessboard corners: what ChArUco detection returns at most."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    def corners_board(self) -> np.ndarray:
        """(N, 3) inner corners in the board frame, in OpenCV's ChArUco id order."""
        return np.asarray(self.opencv_board().getChessboardCorners(), dtype=np.float64)

    def opencv_board(self) -> Any:
        """The ``cv2.aruco.CharucoBoard`` of this definition."""
        import cv2

        if not hasattr(cv2.aruco, self.dictionary):
            raise ValueError(f"unknown ArUco dictionary {self.dictionary!r} (e.g. DICT_4X4_50)")
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square_m, self.marker_m, dictionary
        )

    def image(self, *, px_per_square: int = 80, margin_px: int | None = None) -> np.ndarray:
        """Grey uint8 image of the board (for printing or a texture) with a white margin.

        The chessboard fills the image but for ``margin_px`` on every side (half a square by
        default), so one square is exactly ``px_per_square`` pixels.
        """
        margin = px_per_square // 2 if margin_px is None else margin_px
        size = (
            self.squares_x * px_per_square + 2 * margin,
            self.squares_y * px_per_square + 2 * margin,
        )
        return self.opencv_board().generateImage(size, marginSize=margin, borderBits=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "board") -> CharucoBoardSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"{where}: unknown board field(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)


# The two boards of the simulated workcell: a larger one for the fixed cameras, which see it
# from about a metre away, and a finer one on the table for the wrist camera, 0.3 m above it.
# Their dictionaries differ, so a camera that sees both boards never mixes up their markers.
GRIPPER_BOARD = CharucoBoardSpec(
    squares_x=6, squares_y=5, square_m=0.04, marker_m=0.03, dictionary="DICT_5X5_100"
)
TABLE_BOARD = CharucoBoardSpec(squares_x=7, squares_y=5, square_m=0.035, marker_m=0.026)
