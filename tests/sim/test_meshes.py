"""The shipped light meshes: one per referenced FR3 visual mesh, much lighter, same shape."""

from __future__ import annotations

import numpy as np

from robot_learning.sim.meshes import (
    LIGHT_MESH_DIR,
    cluster_vertices,
    read_obj,
    referenced_visual_meshes,
)


def test_every_visual_mesh_has_a_light_copy_of_the_same_extent():
    full_faces = light_faces = 0
    for source in referenced_visual_meshes():
        light = LIGHT_MESH_DIR / source.name
        assert light.is_file(), f"missing {light}; run python -m robot_learning.sim.meshes"
        full_v, full_f = read_obj(source)
        light_v, light_f = read_obj(light)
        full_faces, light_faces = full_faces + len(full_f), light_faces + len(light_f)
        np.testing.assert_allclose(light_v.min(0), full_v.min(0), atol=0.006)
        np.testing.assert_allclose(light_v.max(0), full_v.max(0), atol=0.006)
    assert light_faces < 0.2 * full_faces


def test_clustering_merges_close_vertices_and_drops_degenerate_faces():
    vertices = np.array([[0, 0, 0], [0.001, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3], [1, 2, 3]])
    merged_v, merged_f = cluster_vertices(vertices, faces, cell_m=0.01)
    assert len(merged_v) == 3
    assert len(merged_f) == 1  # the sliver vanishes, the two big faces coincide
