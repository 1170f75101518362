"""``rl store ...``: inspect, validate, recover, curate, rebuild and upload demonstration stores."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys

from robot_learning.errors import ExitCode
from robot_learning.store import layout
from robot_learning.store.curation import set_excluded
from robot_learning.store.errors import StoreCorruptError
from robot_learning.store.layout import SHARD_FRAMES
from robot_learning.store.normalization import stats_for
from robot_learning.store.reader import StoreReader
from robot_learning.store.rebuild import (
    COMPACT_CODEC,
    COMPACT_EFFORT,
    COMPACT_QUALITY,
    compact,
    merge,
    migrate,
)
from robot_learning.store.recovery import recover
from robot_learning.store.schema import Codec
from robot_learning.store.validate import validate


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    store = subparsers.add_parser("store", help="inspect, validate, recover and curate a store")
    commands = store.add_subparsers(dest="store_command", metavar="STORE_COMMAND")

    info = commands.add_parser("info", help="episodes, steps, keys, size, sources")
    info.add_argument("path")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.set_defaults(func=_info)

    check = commands.add_parser("validate", help="exit 0 only if the store is sound")
    check.add_argument("path")
    check.add_argument("--quick", action="store_true", help="metadata only, skip decoding data")
    check.set_defaults(func=_validate)

    fix = commands.add_parser("recover", help="drop the uncommitted tail left by a crash")
    fix.add_argument("path")
    fix.set_defaults(func=_recover)

    listing = commands.add_parser("list", help="list episodes, optionally filtered")
    listing.add_argument("path")
    add_filters(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=_list)

    for name, excluded in (("exclude", True), ("include", False)):
        cmd = commands.add_parser(
            name,
            help=f"{'mark' if excluded else 'unmark'} episodes as "
            "excluded from training (data is kept)",
        )
        cmd.add_argument("path")
        cmd.add_argument("episodes", type=int, nargs="+")
        cmd.add_argument("--reason", default="")
        cmd.set_defaults(func=_curate, excluded=excluded)

    stats = commands.add_parser("stats", help="normalization statistics (computed and saved)")
    stats.add_argument("path")
    stats.add_argument("keys", nargs="+")
    add_filters(stats)
    stats.set_defaults(func=_stats)

    migrate_cmd = commands.add_parser(
        "migrate", help="convert a store to the sharded layout (in place, or --to a new path)"
    )
    migrate_cmd.add_argument("path")
    migrate_cmd.add_argument("--to", help="write the converted store here; PATH is left as is")
    migrate_cmd.add_argument(
        "--shard-frames",
        type=int,
        default=SHARD_FRAMES,
        help=f"frames per shard file (default {SHARD_FRAMES})",
    )
    migrate_cmd.set_defaults(func=_migrate)

    merge_cmd = commands.add_parser("merge", help="one new store from the episodes of several")
    merge_cmd.add_argument("sources", nargs="+")
    merge_cmd.add_argument("--to", required=True, help="the new store (must not exist)")
    merge_cmd.set_defaults(func=_merge)

    compact_cmd = commands.add_parser(
        "compact", help="re-encode color frames to a denser codec (reports bytes and PSNR)"
    )
    compact_cmd.add_argument("path")
    compact_cmd.add_argument("--to", help="write the compacted store here; PATH is left as is")
    compact_cmd.add_argument("--keys", nargs="+", help="image keys (default: every color key)")
    compact_cmd.add_argument("--codec", choices=["jpegxl", "jpeg"], default=str(COMPACT_CODEC))
    compact_cmd.add_argument("--quality", type=int, default=COMPACT_QUALITY)
    compact_cmd.add_argument(
        "--effort",
        type=int,
        default=COMPACT_EFFORT,
        help="JPEG-XL encoder effort 1..9 (higher: denser, slower)",
    )
    compact_cmd.set_defaults(func=_compact)

    upload_cmd = commands.add_parser(
        "upload", help="send committed episodes to object storage (incremental, resumable)"
    )
    upload_cmd.add_argument("path")
    upload_cmd.add_argument("url", help="e.g. s3://bucket/demos.zarr (credentials as for s3fs)")
    upload_cmd.add_argument(
        "--verify",
        action="store_true",
        help="then validate the remote copy against the local store",
    )
    upload_cmd.set_defaults(func=_upload)
    return commands  # more children register as store.<name> entry points (pyproject.toml)


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", help="teleop, human_video, policy, ...")
    parser.add_argument("--task", action="append")
    parser.add_argument("--success", choices=["yes", "no"])
    parser.add_argument("--include-excluded", action="store_true")


def selection(args: argparse.Namespace, reader: StoreReader) -> list[int]:
    success = None if args.success is None else args.success == "yes"
    return reader.select(
        source=args.source, task=args.task, success=success, include_excluded=args.include_excluded
    )


def _info(args: argparse.Namespace) -> int:
    summary = StoreReader(args.path).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    size = summary["size_bytes"]
    print(
        f"{summary['path']}: {summary['episodes']} episodes ({summary['excluded']} excluded, "
        f"{summary['successful']} successful), {summary['steps']} steps"
        + (f", {size / 1e6:.1f} MB on disk" if size is not None else "")
    )
    print("sources: " + (", ".join(f"{k} {v}" for k, v in summary["sources"].items()) or "-"))
    print("tasks:   " + (", ".join(f"{k} {v}" for k, v in summary["tasks"].items()) or "-"))
    for stream, facts in summary["streams"].items():
        rate = f" @ {facts['rate_hz']} Hz" if facts["rate_hz"] else ""
        print(f"stream {stream}{rate}: {facts['rows']} rows")
    print("keys:")
    for key, spec in summary["keys"].items():
        extra = " ".join(x for x in (spec["units"], spec["frame"]) if x)
        print(
            f"  {key:<24} {spec['dtype']:<8} {str(tuple(spec['shape'])):<16} "
            f"{spec['codec']:<9} {spec['stream']:<8} {extra}"
        )
    return 0


def _validate(args: argparse.Namespace) -> int:
    # A path that is no store at all is bad input (NotAStoreError, exit 2); damage is an answer.
    with contextlib.suppress(StoreCorruptError):  # reported below with all validate finds
        layout.open_root(layout.open_zarr_store(args.path, read_only=True), str(args.path))
    problems = validate(args.path, check_data=not args.quick, progress=sys.stderr.isatty())
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        print(f"{args.path}: {len(problems)} problem(s)")
        return ExitCode.FAILURE
    print(f"{args.path}: ok")
    return 0


def _recover(args: argparse.Namespace) -> int:
    print(recover(args.path).message())
    return 0


def _list(args: argparse.Namespace) -> int:
    reader = StoreReader(args.path)
    for index in selection(args, reader):
        ep = reader.episode(index)
        if args.json:
            print(
                json.dumps(
                    {
                        **json.loads(ep.info.to_json()),
                        "excluded": ep.excluded,
                        "exclusion_reason": ep.curation.reason,
                        "steps": ep.length,
                    }
                )
            )
            continue
        started = datetime.datetime.fromtimestamp(ep.info.start_time_s).isoformat(
            sep=" ", timespec="seconds"
        )
        flag = (
            " EXCLUDED" + (f" ({ep.curation.reason})" if ep.curation.reason else "")
            if ep.excluded
            else ""
        )
        print(
            f"{index:>5}  {ep.info.source:<12} {ep.info.task:<12} "
            f"{'success' if ep.info.success else 'fail':<8} {ep.length:>6} steps  "
            f"{started}  {ep.info.operator}{flag}"
        )
    return 0


def _curate(args: argparse.Namespace) -> int:
    set_excluded(args.path, args.episodes, excluded=args.excluded, reason=args.reason)
    print(f"{args.path}: episodes {args.episodes} {'excluded' if args.excluded else 'included'}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    report = migrate(
        args.path, args.to, shard_frames=args.shard_frames, progress=sys.stderr.isatty()
    )
    print(report.message())
    return 0


def _merge(args: argparse.Namespace) -> int:
    print(merge(args.sources, args.to, progress=sys.stderr.isatty()).message())
    return 0


def _compact(args: argparse.Namespace) -> int:
    report = compact(
        args.path,
        args.to,
        keys=args.keys,
        codec=Codec(args.codec),
        quality=args.quality,
        effort=args.effort,
        progress=sys.stderr.isatty(),
    )
    print(report.message())
    return 0


def _upload(args: argparse.Namespace) -> int:
    from robot_learning.store.remote import upload, verify_upload  # fsspec: an optional extra

    print(upload(args.path, args.url, progress=sys.stderr.isatty()).message())
    if not args.verify:
        return 0
    problems = verify_upload(args.path, args.url)
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{args.url}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return ExitCode.FAILURE if problems else ExitCode.OK


def _stats(args: argparse.Namespace) -> int:
    reader = StoreReader(args.path)
    stats = stats_for(reader, args.keys, selection(args, reader))
    print(json.dumps({k: v.__dict__ for k, v in stats.items()}, indent=2))
    return 0
