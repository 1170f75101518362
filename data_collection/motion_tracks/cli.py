"""``rl tracks label``: add motion-track keys to a store's robot and human episodes."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    parser = subparsers.add_parser("tracks", help="motion tracks (MT-pi) of stored episodes")
    children = parser.add_subparsers(dest="tracks_command", metavar="TRACKS_COMMAND")
    label = children.add_parser(
        "label",
        help="add track keys to the robot and human episodes of a store",
        description="Robot episodes: gripper fingertips and centre from the recorded pose, "
        "gripper width and calibration. Human episodes: thumb tip, index tip and "
        "index knuckle from a hand tracker. Writes track_<cam>, track_state_<cam>, "
        "track_points_3d, track_grasp, track_terminal (and hand_keypoints_<cam>, "
        "hand_state_<cam> for the sim and mediapipe trackers).",
    )
    label.add_argument("--store", type=Path, required=True)
    label.add_argument(
        "--tracker",
        default="sim",
        help="human episodes: sim (simulator ground truth + tracker error "
        "model), stored (the episode's hand_keypoints_<cam>, e.g. from "
        "`rl human track`), or a registered detector run over the frames "
        "(mediapipe)",
    )
    label.add_argument("--hand", choices=("right", "left"), default="right")
    label.add_argument(
        "--cameras",
        nargs="+",
        default=None,
        help="views to label (default: every camera each episode recorded)",
    )
    label.add_argument("--episodes", type=int, nargs="+", default=None)
    label.add_argument("--overwrite", action="store_true", help="replace existing track keys")
    label.add_argument("--seed", type=int, default=0, help="sim tracker error draws")
    label.add_argument(
        "--noise-palm",
        type=float,
        default=None,
        help="sim tracker pixel noise, fraction of the palm size (0.08)",
    )
    label.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="sim tracker dropout burst start probability per frame (0.03)",
    )
    label.add_argument(
        "--swap",
        type=float,
        default=None,
        help="sim tracker left/right swap probability per frame (0.01)",
    )
    label.add_argument(
        "--perfect", action="store_true", help="sim tracker without errors (ground-truth tracks)"
    )
    label.add_argument(
        "--keep-flagged",
        action="store_true",
        help="do not exclude human episodes whose hand is lost too long",
    )
    label.set_defaults(func=run_label)

    def print_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=print_help)
    return children


def run_label(args: argparse.Namespace) -> int:
    import dataclasses

    from data_collection.hand_tracking.sim_tracker import TrackerErrorModel
    from data_collection.motion_tracks.label import LabelConfig, label_store
    from robot_learning.errors import InputError
    from robot_learning.store import StoreError

    errors = TrackerErrorModel.perfect() if args.perfect else TrackerErrorModel()
    changes = {
        name: value
        for name, value in (
            ("noise_palm_fraction", args.noise_palm),
            ("dropout_start_prob", args.dropout),
            ("swap_prob", args.swap),
        )
        if value is not None
    }
    config = LabelConfig(
        store=args.store,
        tracker=args.tracker,
        hand=args.hand,
        cameras=tuple(args.cameras) if args.cameras else None,
        episodes=tuple(args.episodes) if args.episodes else None,
        errors=dataclasses.replace(errors, **changes),
        seed=args.seed,
        overwrite=args.overwrite,
        exclude_flagged=not args.keep_flagged,
    )
    try:
        report = label_store(config)
    except (IndexError, KeyError) as exc:  # an --episodes or --cameras entry the store lacks
        raise InputError(str(exc)) from exc
    except StoreError as exc:  # the store API's advice, in the command's words
        if "overwrite=True" not in str(exc):
            raise
        raise InputError(str(exc).replace("pass overwrite=True", "pass --overwrite")) from exc
    for line in report.lines():
        print(line)
    if report.flagged:
        print(
            "flagged episodes were "
            + ("kept" if args.keep_flagged else "excluded from training (rl store include to undo)")
        )
    return 0
