"""The --ros-args command line and parameter files, as ros2 launch / rl launch pass them."""

from __future__ import annotations

import pytest

from ros_nodes.runtime import ParameterError, RosArgsError, parse_ros_args
from ros_nodes.runtime.dds import DdsNode

LAUNCH_LINE = [
    "--ros-args",
    "-r",
    "__node:=front",
    "-r",
    "__ns:=/camera",
    "--params-file",
    "PARAMS",
    "-p",
    "fps:=15",
    "-p",
    "serial_no:='_0123'",
    "-r",
    "color/image_raw:=/elsewhere/image",
    "--log-level",
    "warn",
]


def test_launch_command_line(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    width: 320\n    fps: 30.0\n"
        "/camera/front:\n  ros__parameters:\n    depth: {enable: true}\n"
        "other:\n  ros__parameters:\n    width: 1\n"
    )
    args = parse_ros_args(["own", *[str(params) if a == "PARAMS" else a for a in LAUNCH_LINE]])
    assert (args.node_name, args.namespace, args.rest) == ("front", "/camera", ["own"])
    assert args.parameter_overrides("/camera/front") == {
        "width": 320,
        "fps": 15,
        "depth.enable": True,
        "serial_no": "_0123",
    }
    assert args.log_level == "warn"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ros-args", "-r", "nonsense"], "from:=to"),
        (["--ros-args", "-p"], "needs a value"),
        (["--ros-args", "--params-file", "/no/such.yaml"], "no such file"),
        (["--ros-args", "--bogus"], "unknown argument '--bogus'"),
    ],
)
def test_bad_command_lines_say_what_is_wrong(argv, message):
    with pytest.raises(RosArgsError, match=message):
        parse_ros_args(argv)


def test_names_resolve_like_ros_and_parameters_are_typed(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "231")  # no peers: this test talks to nobody
    node = DdsNode(
        "camera_node",
        parse_ros_args(
            [
                "--ros-args",
                "-r",
                "__node:=front",
                "-r",
                "__ns:=/camera",
                "-p",
                "fps:=15",
                "-p",
                "width:=wide",
                "-r",
                "color/image_raw:=/remapped",
                "-p",
                "unused:=1",
            ]
        ),
    )
    try:
        assert node.fqn == "/camera/front"
        assert node.resolve_topic("color/image_raw") == "/remapped"
        assert node.resolve_topic("color/camera_info") == "/camera/color/camera_info"
        assert node.resolve_topic("~/status") == "/camera/front/status"
        assert node.resolve_topic("/abs") == "/abs"
        assert node.declare_parameter("fps", 30.0, "frame rate") == 15.0  # int for a float
        assert node.declare_parameter("depth", False, "aligned depth") is False
        with pytest.raises(ParameterError, match="'width' must be int"):
            node.declare_parameter("width", 640, "image width")
        assert node.parameters["fps"].description == "frame rate"
    finally:
        node.close()
