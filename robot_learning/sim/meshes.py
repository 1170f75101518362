"""Where the FR3 meshes come from, and the light visual meshes that make CPU rendering fast.

franky-sim ships the MuJoCo Menagerie FR3 visual meshes (about 240,000 triangles). Offscreen
rendering on a CPU (Mesa llvmpipe through EGL) is vertex-bound, so the workcell renders
vertex-clustered copies instead (about 37,000 triangles, 6 mm cells: below one pixel at the
observation resolutions). They are generated from the installed franky-sim meshes by
``python -m robot_learning.sim.meshes`` and shipped under ``robot_learning/sim/assets``;
collision meshes always come from franky-sim unchanged.
"""

from __future__ import annotations

import argparse
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

LIGHT_MESH_DIR = Path(__file__).parent / "assets" / "fr3_light"
CLUSTER_CELL_M = 0.006
MIN_FACES_TO_DECIMATE = 3000  # small parts (buttons, rings, logos) are kept as they are


def franky_sim_assets_dir() -> Path:
    """The installed franky-sim asset folder (fr3.xml + meshes/)."""
    try:
        import franky_sim
    except ImportError as exc:  # pragma: no cover - the sim extra is missing
        raise ImportError(
            "the simulated workcell needs franky-sim (pip install 'robot-learning-stack[sim]')"
        ) from exc
    return Path(franky_sim.__file__).parent / "assets"


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) and triangles (M, 3, zero-based) of a Wavefront OBJ (polygons fanned)."""
    vertices: list[list[str]] = []
    faces: list[tuple[int, int, int]] = []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            vertices.append(line.split()[1:4])
        elif line.startswith("f "):
            idx = [int(token.split("/")[0]) for token in line.split()[1:]]
            faces.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
    if not vertices or not faces:
        raise ValueError(f"{path}: no vertices or faces found")
    return np.array(vertices, dtype=np.float64), np.array(faces, dtype=np.int64) - 1


def cluster_vertices(
    vertices: np.ndarray, faces: np.ndarray, *, cell_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering decimation: merge vertices per grid cell, drop degenerate faces."""
    keys = np.floor(vertices / cell_m).astype(np.int64)
    _, cluster = np.unique(keys, axis=0, return_inverse=True)
    cluster = cluster.ravel()
    n_clusters = int(cluster.max()) + 1
    centers = np.zeros((n_clusters, 3))
    np.add.at(centers, cluster, vertices)
    centers /= np.bincount(cluster, minlength=n_clusters)[:, None]
    merged = cluster[faces]
    keep = (
        (merged[:, 0] != merged[:, 1])
        & (merged[:, 1] != merged[:, 2])
        & (merged[:, 0] != merged[:, 2])
    )
    merged = merged[keep]
    _, first = np.unique(np.sort(merged, axis=1), axis=0, return_index=True)
    merged = merged[np.sort(first)]
    used = np.unique(merged)
    remap = np.full(n_clusters, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return centers[used], remap[merged]


def referenced_visual_meshes() -> list[Path]:
    """The OBJ visual meshes that franky-sim's fr3.xml uses."""
    assets = franky_sim_assets_dir()
    root = ET.parse(assets / "fr3.xml").getroot()
    names = sorted({m.get("file", "") for m in root.iter("mesh")})
    return [assets / "meshes" / name for name in names if name.endswith(".obj")]


def write_obj(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    lines = [f"v {x:.5f} {y:.5f} {z:.5f}\n" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces]
    path.write_text("".join(lines))


def generate_light_meshes(out_dir: Path = LIGHT_MESH_DIR, *, cell_m: float = CLUSTER_CELL_M) -> int:
    """Write a decimated copy of every franky-sim visual OBJ; return the total face count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    total_faces = 0
    for source in referenced_visual_meshes():
        vertices, faces = read_obj(source)
        if len(faces) >= MIN_FACES_TO_DECIMATE:
            vertices, faces = cluster_vertices(vertices, faces, cell_m=cell_m)
        write_obj(out_dir / source.name, vertices, faces)
        total_faces += len(faces)
    logger.info("wrote %d-face light meshes to %s", total_faces, out_dir)
    return total_faces


def visual_mesh_file(file_name: str, *, light: bool) -> Path:
    """The file a visual mesh is loaded from: the light copy when asked for and present."""
    if light:
        candidate = LIGHT_MESH_DIR / file_name
        if candidate.is_file():
            return candidate
        logger.warning(
            "light mesh %s missing (run python -m robot_learning.sim.meshes); using the full one",
            candidate,
        )
    return franky_sim_assets_dir() / "meshes" / file_name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the light FR3 visual meshes.")
    parser.add_argument("--out", type=Path, default=LIGHT_MESH_DIR)
    parser.add_argument("--cell-m", type=float, default=CLUSTER_CELL_M)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    generate_light_meshes(args.out, cell_m=args.cell_m)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
