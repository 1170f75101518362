"""The demo's report: ONE self-contained HTML page built from the JSON files of a demo output
folder (``rl demo`` writes them; ``rl demo --report-only`` rebuilds the page from them).

Plots are PNGs drawn with matplotlib's Agg backend and embedded as base64 data URIs, frame
strips likewise, so the page opens anywhere, offline, and can be mailed as one file. A stage
whose JSON is missing (an interrupted run) gets its section with a line saying so.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPORT_HTML = "report.html"
WEEK_JSON = "week.json"
# id -> heading of every section, in page order (the test checks each renders)
SECTIONS = {
    "budgets": "Budgets and wall time of every stage",
    "calibration": "Calibration residuals",
    "data": "Data collected",
    "training": "Training curves",
    "success": "Success per policy",
    "rounds-success": "Success per intervention round",
    "rounds-interventions": "Intervention rate per round",
    "latency": "Latency histograms",
    "strips": "Rollout frame strips",
}
STRIP_SCALE = 1.5  # frame strips: CSS pixels per camera pixel (sim cameras are small)
POLICY_LABELS = {"act": "ACT", "diffusion": "Diffusion", "mtpi": "MT-pi"}


def build_report(out: Path) -> Path:
    """Write ``out/report.html`` from the JSON files in ``out``; returns its path."""
    out = Path(out)
    data = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    if WEEK_JSON.removesuffix(".json") not in data:
        raise FileNotFoundError(
            2, f"no {WEEK_JSON} here: not a demo output folder (run `rl demo --out DIR`)", str(out)
        )
    builders: dict[str, Callable[[dict, Path], str]] = {
        "budgets": _budgets,
        "calibration": _calibration,
        "data": _data,
        "training": _training,
        "success": _success,
        "rounds-success": _rounds_success,
        "rounds-interventions": _rounds_interventions,
        "latency": _latency,
        "strips": _strips,
    }
    sections = []
    for section_id, heading in SECTIONS.items():
        try:
            body = builders[section_id](data, out)
        except (KeyError, TypeError, IndexError, ValueError) as exc:  # JSON of another version
            body = (
                f'<p class="missing">This section cannot be drawn from the JSON files in '
                f"{html.escape(str(out))} ({type(exc).__name__}: {html.escape(str(exc))}); "
                "they may come from another version of rl demo: run it again.</p>"
            )
        sections.append(f'<section id="{section_id}">\n<h2>{heading}</h2>\n{body}\n</section>')
    path = out / REPORT_HTML
    path.write_text(_page(data["week"], "\n".join(sections)))
    return path


# -- page ---------------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img.plot { max-width: 100%; }
.strips { display: flex; flex-wrap: wrap; gap: 1em; }
.strips figure { margin: 0; } .strips img { image-rendering: pixelated; }
.note { color: #555; } .missing { color: #a00; }
"""


def _page(week: dict, body: str) -> str:
    budget = week["budget"]["name"]
    state = "" if week.get("finished") else " (unfinished: some stages did not run)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>robot-learning stack: the simulated week ({html.escape(budget)} budget)</title>
<style>{STYLE}</style></head>
<body>
<h1>The simulated week</h1>
<p class="note">Calibration, collection, training, evaluation, deployment with interventions
and retraining on the simulated workcell, task <b>{html.escape(week["budget"]["task"])}</b>,
<b>{html.escape(budget)}</b> budget{state}. Started {html.escape(week["started"])},
{week.get("total_s", 0) / 60:.1f} min in all on {html.escape(_machine())}.</p>
{body}
</body></html>
"""


def _machine() -> str:
    cores = os.cpu_count()
    return f"{platform.machine()} CPU, {cores} cores, Python {platform.python_version()}"


def _missing(stage: str) -> str:
    return f'<p class="missing">No figures: stage "{stage}" has not run ({stage}.json missing).</p>'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def _img(png: bytes, alt: str, css: str = "plot", scale: float | None = None) -> str:
    """An embedded PNG; ``scale``: shown at that many CSS pixels per image pixel."""
    data = base64.b64encode(png).decode("ascii")
    size = ""
    if scale is not None:
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
        size = f' width="{round(scale * width)}" height="{round(scale * height)}"'
    return f'<img class="{css}"{size} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _plot(draw: Callable[[Any], None], alt: str, size: tuple[float, float] = (8, 3.2)) -> str:
    """``draw(figure)`` onto a new Agg figure; returns the embedded PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return _img(buffer.getvalue(), alt)


def _mb(size_bytes: float | None) -> str:
    return "" if size_bytes is None else f"{size_bytes / 1e6:.1f} MB"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


# -- sections -----------------------------------------------------------------------------------
def _budgets(data: dict, out: Path) -> str:
    week = data["week"]
    budget = week["budget"]
    stages = [[s["title"], f"{s['wall_s']:.1f} s"] for s in week["stages"]]
    stages.append(["total", f"{week.get('total_s', 0):.1f} s"])
    steps = ", ".join(f"{POLICY_LABELS.get(k, k)} {v}" for k, v in budget["train_steps"].items())
    rows = [
        ["calibration", f"{budget['calibration_views']} views per camera, "
         f"{_fmt(budget['calibration_size'])} px, cameras "
         + ", ".join(budget["calibration_cameras"])],
        ["ROS 2 graph episodes", f"{budget['ros_episodes']} at {_fmt(budget['ros_size'])} px"],
        ["scripted-expert demos", f"{budget['demos']} ({', '.join(budget['robot_cameras'])} at "
         f"{_fmt(budget['image_size'])} px)"],
        ["hand videos", f"{budget['hand_videos']} ({', '.join(budget['hand_cameras'])} at "
         f"{_fmt(budget['image_size'])} px)"],
        ["cameras per policy", "; ".join(
            f"{POLICY_LABELS.get(k, k)} {' + '.join(v)}"
            for k, v in budget["policy_cameras"].items()
        )],
        ["training steps (sim presets)", f"{steps}; batch {budget['batch_size']}"],
        ["changed from the sim presets", "; ".join(
            f"{POLICY_LABELS.get(k, k)} " + ", ".join(f"{f}={v}" for f, v in c.items())
            for k, c in budget.get("policy_changes", {}).items() if c
        ) or "nothing"],
        ["evaluation episodes", f"{budget['eval_episodes']} per policy and round "
         + (f"(at most {budget['max_episode_s']} s each)" if budget["max_episode_s"]
            else "(each up to the task's time limit)")],
        ["intervention rounds", f"{budget['rounds']} deploy -> retrain rounds, "
         f"{budget['deploy_episodes']} deployment episodes each, ACT fine-tuned "
         f"{budget.get('round_steps', '?')} steps a round"],
    ]  # fmt: skip
    return (
        "<h3>Wall time</h3>"
        + _table(["stage", "wall time"], stages)
        + f"<h3>Budget: {html.escape(budget['name'])}</h3>"
        + _table(["what", "budget"], rows)
    )


def _calibration(data: dict, out: Path) -> str:
    calib = data.get("calibration")
    if calib is None:
        return _missing("calibration")
    cameras = calib["cameras"]

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2)
        for name, cam in cameras.items():
            left.plot(cam["intrinsics_view_rms_px"], "o-", label=name)
            right.plot(cam["handeye_view_rms_px"], "o-", label=name)
        left.set(title="intrinsics: reprojection RMS per view", xlabel="view", ylabel="px")
        right.set(title="hand-eye refinement: RMS per view", xlabel="view", ylabel="px")
        left.legend()

    rows = []
    for name, cam in cameras.items():
        e = cam["errors_vs_truth"]
        rows.append([
            name, cam["mount"], e["focal_error_pct"], e["principal_point_error_px"],
            e["handeye_translation_error_mm"], e["handeye_rotation_error_deg"],
            e["reprojection_rms_px"], e["views_used"], "yes" if cam["holdout_passed"] else "NO",
        ])  # fmt: skip
    pairs = [
        [name, p.get("shared_views"), p.get("rms_px")] for name, p in calib.get("pairs", {}).items()
    ]
    return (
        _plot(draw, "calibration residuals per view")
        + _table(
            [
                "camera",
                "mount",
                "focal error %",
                "principal point error px",
                "hand-eye error mm",
                "hand-eye error deg",
                "reprojection RMS px",
                "views",
                "held-out check",
            ],
            rows,
        )  # fmt: skip
        + (_table(["camera pair", "shared views", "RMS px"], pairs) if pairs else "")
        + f'<p class="note">Errors against the simulator\'s true camera parameters; saved to '
        f"{html.escape(calib['saved'])}.</p>"
    )


def _data(data: dict, out: Path) -> str:
    parts = []
    ros, demos, hand = data.get("ros_collection"), data.get("demos"), data.get("hand_videos")
    rows = []
    if ros:
        rows.append(["ROS 2 collection graph (rl launch, scripted operator)", ros["episodes"],
                     ros["successful"], ros["steps"], _mb(ros["size_bytes"]),
                     f"{ros['recorded_s']:.0f} s", ros["store"]])  # fmt: skip
    if demos:
        c = demos["collect"]
        rows.append(["scripted expert (rl sim collect)", c["episodes"], c["successes"],
                     c["steps"], _mb(demos.get("size_bytes")), f"{demos['wall_s']:.0f} s",
                     demos["store"]])  # fmt: skip
    if hand:
        c = hand["collect"]
        added = hand["store"]["size_bytes"] - ((demos or {}).get("size_bytes") or 0)
        rows.append(["hand videos (rl sim collect --embodiment hand)", c["episodes"],
                     c["successes"], c["steps"], _mb(added), f"{c['wall_s']:.0f} s",
                     demos["store"] if demos else ""])  # fmt: skip
    if not rows:
        return _missing("ros_collection")
    parts.append(
        _table(["source", "episodes", "successful", "steps", "size", "time", "store"], rows)
    )
    if ros:
        parts.append(
            f'<p class="note">The ROS 2 graph ran as a user starts it '
            f"(<code>{html.escape(ros['command'])}</code>): sim_node, teleop_node and "
            "recorder_node in their own processes over DDS on loopback. Its scripted operator "
            "plays a fixed motion script (it needs no simulator state, as a SpaceMouse does "
            "not), which does not solve the task; so the policies train on the scripted "
            "expert's demonstrations, recorded through the same teleop path in process.</p>"
        )
    if hand:
        t = hand["tracks"]
        parts.append(
            "<p>Motion tracks (rl tracks label, simulated tracker with its error model): "
            f"{t['robot_episodes']} robot and {t['human_episodes']} human episodes labelled, "
            f"{len(t['flagged'])} flagged. " + html.escape("; ".join(t["lines"][1:])) + ".</p>"
        )
    final = (data.get("rounds") or {}).get("store") or (hand or {}).get("store")
    if final:

        def draw(figure: Any) -> None:
            ax = figure.subplots()
            sources = final["sources"]
            ax.bar(list(sources), list(sources.values()), color="tab:blue")
            ax.set(title=f"{demos['store'] if demos else 'store'}: episodes by source",
                   ylabel="episodes")  # fmt: skip

        parts.append(_plot(draw, "episodes by source", size=(6, 2.8)))
        parts.append(
            f'<p class="note">In the end: {final["episodes"]} episodes, {final["steps"]} '
            f"steps, {final['size_bytes'] / 1e6:.1f} MB (policy and intervention episodes "
            "are the deployment rollouts).</p>"
        )
    return "\n".join(parts)


def _training(data: dict, out: Path) -> str:
    training = data.get("training")
    if training is None:
        return _missing("training")

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        for name, run in training.items():
            if name == "wall_s" or not run["losses"]:
                continue
            steps = [i * run["loss_every"] for i in range(len(run["losses"]))]
            ax.plot(steps, run["losses"], label=POLICY_LABELS.get(name, name))
        ax.set(xlabel="step", ylabel="training loss", yscale="log")
        ax.legend()

    rows = [
        [POLICY_LABELS.get(n, n), r["steps"], f"{r['seconds']:.0f} s",
         f"{r['seconds'] / max(1, r['steps']):.2f} s", r["checkpoint"]]
        for n, r in training.items() if n != "wall_s"
    ]  # fmt: skip
    return _plot(draw, "training losses") + _table(
        ["policy", "steps", "time", "per step", "checkpoint"], rows
    )


def _policies(evaluation: dict) -> list[tuple[str, dict]]:
    return [(n, r) for n, r in evaluation.items() if n != "wall_s"]


def _success(data: dict, out: Path) -> str:
    evaluation = data.get("evaluation")
    if evaluation is None:
        return _missing("evaluation")
    runs = _policies(evaluation)

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        _success_bars(ax, [POLICY_LABELS.get(n, n) for n, _ in runs], [r for _, r in runs])
        ax.set(title="success alone, 95% Wilson interval")

    rows = [
        [POLICY_LABELS.get(n, n), f"{r['successes']}/{r['episodes']}", _pct(r["success_rate"]),
         f"{_pct(r['ci95'][0])}-{_pct(r['ci95'][1])}",
         f"{sum(r['episode_length_s']) / len(r['episode_length_s']):.1f} s",
         r["latency_ms_p50"], r["latency_ms_p99"], f"{r['seeds'][0]}..{r['seeds'][-1]}"]
        for n, r in runs
    ]  # fmt: skip
    note = (
        '<p class="note">Each policy alone (no operator) on the same unseen seeds. At the demo\'s '
        "budgets success shows that the loop runs end to end, not how well the recipes learn: "
        "the README's measured runs (4,000-16,000 steps on 100 demonstrations) give those.</p>"
    )
    return note + _plot(draw, "success per policy", size=(6, 3)) + _table(
        ["policy", "successes", "rate", "95% CI", "mean length", "call p50 ms", "call p99 ms",
         "seeds"],
        rows,
    )  # fmt: skip


def _success_bars(ax: Any, labels: list[str], reports: list[dict]) -> None:
    rates = [r["success_rate"] for r in reports]
    lower = [r["success_rate"] - r["ci95"][0] for r in reports]
    upper = [r["ci95"][1] - r["success_rate"] for r in reports]
    ax.bar(labels, rates, yerr=[lower, upper], capsize=6, color="tab:green")
    ax.set(ylim=(0, 1), ylabel="success rate")


def _rounds(data: dict) -> list[dict] | None:
    return (data.get("rounds") or {}).get("rounds")


def _rounds_success(data: dict, out: Path) -> str:
    rounds = _rounds(data)
    if rounds is None:
        return _missing("rounds")
    policy = POLICY_LABELS.get(data["rounds"]["policy"], data["rounds"]["policy"])

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        labels = [f"round {r['round']}" for r in rounds]
        _success_bars(ax, labels, [r["evaluation"] for r in rounds])
        ax.set(title=f"{policy} alone after each round, 95% Wilson interval")

    rows = [
        [r["round"], f"{r['evaluation']['successes']}/{r['evaluation']['episodes']}",
         _pct(r["evaluation"]["success_rate"]),
         f"{_pct(r['evaluation']['ci95'][0])}-{_pct(r['evaluation']['ci95'][1])}",
         f"{r['train_s']:.0f} s", r["checkpoint"]]
        for r in rounds
    ]  # fmt: skip
    return (
        _plot(draw, "success per round", size=(6, 3))
        + _table(["round", "successes", "rate", "95% CI", "training", "checkpoint"], rows)
        + '<p class="note">Round 0 is the policy of the training stage; round r+1 is trained '
        "anew on the demonstrations and the human-controlled steps of every rollout of rounds "
        "0..r (HG-DAgger).</p>"
    )


def _rounds_interventions(data: dict, out: Path) -> str:
    rounds = _rounds(data)
    if rounds is None:
        return _missing("rounds")
    deployed = [r for r in rounds if r["deployment"]]
    if not deployed:
        return '<p class="missing">No round was deployed (rounds = 0 in this budget).</p>'

    def draw(figure: Any) -> None:
        ax = figure.subplots()
        x = [r["round"] for r in deployed]
        width = 0.38
        ax.bar([i - width / 2 for i in x], [r["deployment"]["intervention_rate"] for r in deployed],
               width, label="episodes with a takeover")  # fmt: skip
        ax.bar([i + width / 2 for i in x], [r["deployment"]["human_fraction"] for r in deployed],
               width, label="ticks under human control")  # fmt: skip
        ax.set(xticks=x, xlabel="round", ylim=(0, 1), ylabel="fraction")
        ax.legend()

    rows = [
        [r["round"], d["episodes"], d["episodes_with_intervention"], _pct(d["intervention_rate"]),
         d["interventions"], _pct(d["human_fraction"]), _pct(d["success_rate"]),
         len(d["recorded"])]
        for r in deployed
        for d in [r["deployment"]]
    ]  # fmt: skip
    return _plot(draw, "intervention rate per round", size=(6, 3)) + _table(
        ["round", "episodes", "with takeover", "intervention rate", "takeovers",
         "human ticks", "success with operator", "recorded"],
        rows,
    )  # fmt: skip


def _latency(data: dict, out: Path) -> str:
    evaluation = data.get("evaluation")
    if evaluation is None:
        return _missing("evaluation")
    runs = [(n, r) for n, r in _policies(evaluation) if r.get("latency_ms")]

    def draw(figure: Any) -> None:
        axes = figure.subplots(1, len(runs), squeeze=False)[0]
        for ax, (name, report) in zip(axes, runs, strict=True):
            ax.hist(report["latency_ms"], bins=30, color="tab:orange")
            ax.set(title=POLICY_LABELS.get(name, name), xlabel="policy call, ms")
        axes[0].set(ylabel="calls")

    if not runs:
        return '<p class="missing">The evaluation recorded no policy-call latencies.</p>'
    return _plot(draw, "latency histograms", size=(9, 3)) + (
        '<p class="note">Time of each policy call (observation to action chunk) in the '
        "lockstep evaluation: the simulator waits while the policy thinks.</p>"
    )


def _strips(data: dict, out: Path) -> str:
    evaluation = data.get("evaluation")
    if evaluation is None:
        return _missing("evaluation")
    figures = []
    named = [(POLICY_LABELS.get(n, n), r) for n, r in _policies(evaluation)]
    named += [(f"{data['rounds']['policy'].upper()} round {r['round']}", r["evaluation"])
              for r in _rounds(data) or []]  # fmt: skip
    for label, report in named:
        for video in report["videos"]:
            path = out / video
            if not path.is_file():
                figures.append(f'<p class="missing">{html.escape(video)} is missing.</p>')
                continue
            caption = f"{label}: {Path(video).stem.replace('_', ' ')}"
            figures.append(
                f"<figure>{_img(path.read_bytes(), caption, css='strip', scale=STRIP_SCALE)}"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    if not figures:
        return '<p class="missing">No frame strips were written.</p>'
    return (
        '<p class="note">Evenly spaced observations of the first evaluation rollouts, top to '
        "bottom; the cameras side by side, as the policy sees them.</p>"
        f'<div class="strips">{"".join(figures)}</div>'
    )
