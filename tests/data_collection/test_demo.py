"""``rl demo --budget smoke``: every stage of the week runs, writes its figures as JSON, and
the HTML report renders in a real headless browser (Debian's chromium), every section and
every image.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_collection.demo.report import REPORT_HTML, SECTIONS
from data_collection.demo.week import STAGE_TITLES
from robot_learning.cli import main
from robot_learning.store import StoreReader

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
POLICIES = ("act", "diffusion", "mtpi")
POLICY_NAMES = ("ACT", "Diffusion", "MT-pi")  # how the report captions their frame strips

# Injected into a copy of the report: once the page has loaded, the headings and every
# image's decoded size land in the DOM that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => [i.alt, i.complete, i.naturalWidth,
                                                 i.naturalHeight]);
  const headings = [...document.querySelectorAll("section > h2")].map(h =>
      [h.parentElement.id, h.textContent, h.getBoundingClientRect().height]);
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({images, headings});
  document.body.appendChild(probe);
});
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("no chromium here and not root to install it: apt-get install chromium")
    pytest.fail("chromium is missing: `make system-deps` installs it (Debian package chromium)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "demo", "--budget", "smoke",
         "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout  # headers and results; the progress bars are on stderr


def test_every_stage_runs_with_a_header_and_writes_its_figures(demo):
    out, output = demo
    for number, title in enumerate(STAGE_TITLES.values(), start=1):
        assert f"== {number}/{len(STAGE_TITLES)} {title}" in output
    assert output.rstrip().endswith(f"report: {out / REPORT_HTML}")
    week = json.loads((out / "week.json").read_text())
    assert week["finished"] and week["budget"]["name"] == "smoke"
    assert [s["stage"] for s in week["stages"]] == list(STAGE_TITLES)
    assert all(s["wall_s"] > 0 for s in week["stages"])

    budget = week["budget"]
    ros = json.loads((out / "ros_collection.json").read_text())
    assert ros["launch_exit_code"] == 0  # stopped by SIGINT, every node cleanly
    assert StoreReader(out / "ros_demos.zarr").num_episodes == ros["episodes"] >= 1
    evaluation = json.loads((out / "evaluation.json").read_text())
    for policy in POLICIES:
        report = evaluation[policy]
        assert report["episodes"] == budget["eval_episodes"] == len(report["episode_success"])
        assert report["successes"] == sum(report["episode_success"])
        assert len(report["videos"]) == budget["frame_strips"]
        assert report["latency_ms"] and min(report["latency_ms"]) > 0
        # one store, each policy on its own views (ACT with the wrist camera, MT-pi without)
        features = json.loads((out / "runs" / policy / "checkpoint" / "features.json").read_text())
        assert features["cameras"] == [f"camera_{c}" for c in budget["policy_cameras"][policy]]
    hand = json.loads((out / "hand_videos.json").read_text())
    assert hand["validate"] == []  # the store with and without the wrist camera is sound
    demos = StoreReader(out / "demos.zarr")
    human = demos.select(source=("human_video",))
    assert human and all("camera_wrist" not in demos.episode(e).info.keys for e in human)

    # the deployment rollouts were recorded into the demonstrations' store, and retraining
    # (round 1) trained on them
    rounds = json.loads((out / "rounds.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == list(range(budget["rounds"] + 1))
    reader = StoreReader(out / "demos.zarr")
    rollouts = reader.select(source=("policy", "intervention"))
    recorded = [i for r in rounds if r["deployment"] for i in r["deployment"]["recorded"]]
    assert sorted(recorded) == rollouts and len(rollouts) == budget["deploy_episodes"]
    data = json.loads((out / "rounds" / "round1" / "checkpoint" / "data.json").read_text())
    used = set(data["train_episodes"]) | set(data["val_episodes"])
    assert set(rollouts) <= used, "round 1 did not learn from the deployment rollouts"
    # round 1 fine-tuned round 0's weights at a constant rate, not the preset's cosine decay
    configs = [
        json.loads((out / path / "checkpoint" / "config.json").read_text())
        for path in ("runs/act", "rounds/round1")
    ]
    assert [c["lr_schedule"] for c in configs] == ["cosine", "constant"]


def _rendered(out: Path, tmp_path: Path) -> dict:
    page = (out / REPORT_HTML).read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"chromium rendered no probe: {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_the_report_renders_every_section_and_image_in_chromium(demo, tmp_path):
    out, _ = demo
    page = (out / REPORT_HTML).read_text()
    assert 'src="http' not in page and 'href="http' not in page  # self-contained
    rendered = _rendered(out, tmp_path)
    headings = {sid: (text, height) for sid, text, height in rendered["headings"]}
    for section_id, heading in SECTIONS.items():
        assert headings[section_id][0] == heading and headings[section_id][1] > 0
    images = rendered["images"]
    assert len(images) == page.count("<img ")
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"image {alt!r} did not decode"
    # one plot per figure section, the calibration's and data's included, and every strip
    evaluation = json.loads((out / "evaluation.json").read_text())
    rounds = json.loads((out / "rounds.json").read_text())["rounds"]
    strips = sum(len(evaluation[p]["videos"]) for p in POLICIES)
    strips += sum(len(r["evaluation"]["videos"]) for r in rounds)
    assert sum(alt.startswith(tuple(POLICY_NAMES)) for alt, *_ in images) == strips
    for policy in POLICIES:  # the success table shows the evaluation's own counts
        report = evaluation[policy]
        assert f"<td>{report['successes']}/{report['episodes']}</td>" in page


def test_report_only_rebuilds_the_same_page_from_the_json(demo, tmp_path, capsys):
    out, _ = demo
    before = (out / REPORT_HTML).read_bytes()
    (out / REPORT_HTML).unlink()
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "demo", "--report-only", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / REPORT_HTML).read_bytes() == before

    # JSON of another version (a key gone): that section says so, the others still render
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged, ignore=shutil.ignore_patterns("*.zarr", "runs", "rounds"))
    calibration = json.loads((damaged / "calibration.json").read_text())
    del calibration["cameras"]["front"]["errors_vs_truth"]
    (damaged / "calibration.json").write_text(json.dumps(calibration))
    assert main(["demo", "--report-only", "--out", str(damaged)]) == 0
    page = (damaged / REPORT_HTML).read_text()
    calibration_section = page.split('<section id="calibration">')[1].split("</section>")[0]
    assert "cannot be drawn from the JSON files" in calibration_section
    assert "KeyError: &#x27;errors_vs_truth&#x27;" in calibration_section
    assert page.count("<td>0/") == before.decode().count("<td>0/")  # success tables intact
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--report-only", "--out", str(tmp_path / "empty")]) == 2
    assert "no week.json here: not a demo output folder" in capsys.readouterr().err
