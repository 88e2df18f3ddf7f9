"""report: one self-contained HTML (plots embedded, no remote assets), Markdown, PNG files."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import (
    UNIT_DIR,
    collect_argv,
    experiment,
    report_argv,
    summary,
    write_run,
    write_smoke_runs,
)

from workflow_scripts import collect, report
from workflow_scripts.jobs.io_utils import config_hash

PLOTS = ("learning_curves.png", "final_comparison.png", "compute.png")
SECTIONS = (
    "headline",
    "conclusions",
    "contrasts",
    "results",
    "learning-curves",
    "compute",
    "settings",
    "provenance",
    "tensorboard",
)


class AssetParser(HTMLParser):
    """Every URL-bearing attribute and every tag name of the document."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "data", "action"):
                self.urls.append((tag, name, value or ""))
            if name == "id":
                self.ids.append(value or "")


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("smoke")
    write_smoke_runs(root)
    config = experiment(train_overrides={"freeze": {"learning_rate": 1e-3}})
    config["variants"]["baseline"]["description"] = "random init <b>same</b> architecture"
    assert collect.main(collect_argv(root)) == 0
    assert report.main(report_argv(root, config)) == 0
    return root


@pytest.fixture(scope="module")
def failure_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """baseline seed 1 crashed, nofreeze seed 0 reported failure, frozen_ln planned but never ran."""
    root = tmp_path_factory.mktemp("failures")
    write_smoke_runs(root, {"frozen_all": (0.30, 0.32), "freeze": (0.40, 0.43)})
    for seed, corr in ((0, 0.11), (1, None)):
        write_run(root, "baseline", seed, corr, epochs=2)
    run_dir = root / "results" / "runs" / UNIT_DIR / "nofreeze" / "seed0"
    run_dir.mkdir(parents=True)
    failed = summary("nofreeze", 0, 0.9, status="failed")
    failed["error"] = "CUDA out of memory"
    run_dir.joinpath("summary.json").write_text(json.dumps(failed))
    assert collect.main(collect_argv(root)) == 0
    config = experiment(variants=("freeze", "nofreeze", "frozen_all", "baseline", "frozen_ln"))
    assert report.main(report_argv(root, config)) == 0
    return root


def test_smoke_report_renders_every_output(smoke_report: Path) -> None:
    results = smoke_report / "results"
    html = (results / "report.html").read_text()
    markdown = (results / "report.md").read_text()
    for name in PLOTS:
        png = (results / "plots" / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert base64.b64encode(png).decode() in html  # the same image, embedded
        assert f"](plots/{name})" in markdown
    for variant in ("freeze", "nofreeze", "frozen_all", "baseline"):
        assert f"<strong>{variant}</strong>" in html and f"**{variant}**" in markdown
    parser = AssetParser()
    parser.feed(html)
    assert set(SECTIONS) <= set(parser.ids)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert (
        "tensorboard --logdir logs/tensorboard" in html
        and "tensorboard --logdir logs/tensorboard" in markdown
    )


def test_html_is_self_contained(smoke_report: Path) -> None:
    html = (smoke_report / "results" / "report.html").read_text()
    parser = AssetParser()
    parser.feed(html)
    images = [url for tag, attr, url in parser.urls if tag == "img"]
    assert len(images) == 6 and all(url.startswith("data:image/png;base64,") for url in images)
    others = [url for tag, attr, url in parser.urls if tag != "img"]
    assert others and all(url.startswith("#") for url in others)
    assert not re.search(r"https?://", html, flags=re.IGNORECASE)
    assert "@import" not in html and "url(" not in html


def test_settings_provenance_and_escaping(smoke_report: Path) -> None:
    html = (smoke_report / "results" / "report.html").read_text()
    config = experiment(train_overrides={"freeze": {"learning_rate": 1e-3}})
    config["variants"]["baseline"]["description"] = "random init <b>same</b> architecture"
    assert '<td class="differs">0.001</td>' in html
    assert "random init &lt;b&gt;same&lt;/b&gt; architecture" in html
    assert config_hash(config) in html
    assert "df1b051c49625cf57a3d0d8d3863ed4d13564fe4" in html  # model revision
    assert "ab" * 32 in html and "cd" * 32 in html  # weight and data sha256
    assert "python -m workflow_scripts.train --variant-json" in html
    assert f"--force results/runs/{UNIT_DIR}/freeze/seed1/summary.json" in html
    assert "pandas" in html and "git commit" in html


def test_conclusions_are_generated(smoke_report: Path) -> None:
    markdown = (smoke_report / "results" / "report.md").read_text()
    section = markdown.split("## Conclusions", 1)[1].split("## Results", 1)[0]
    # the report opens with the answer; 2 seeds cannot reach significance (smallest p = 0.5)
    assert markdown.split("\n")[2].startswith(
        "**Does the pretrained encoder help? Cannot tell at this number of units, at 50 steps.** "
        "transfer effect"
    )
    assert "no result could be significant" in markdown.split("\n")[2]
    assert "Planned contrasts (test skill)" in section and "Learning speed" in section
    assert "cannot be significant with 2 units" in section
    assert "NOT reachable whatever the numbers" in section
    assert "skipped: frozen_random not enabled in this study" in section
    contrasts = markdown.split("## Paired contrasts", 1)[1].split("## Results", 1)[0]
    assert "| nofreeze − baseline | primary | test skill (higher is better) | 2 | 0.305 |" in contrasts
    assert "exact paired sign-flip permutation test" in contrasts
    assert "seed 0: 0.310, seed 1: 0.300" in contrasts
    assert "fill in" not in markdown.lower()


def test_failed_and_missing_runs_are_reported_not_zeroed(failure_report: Path) -> None:
    results = failure_report / "results"
    html = (results / "report.html").read_text()
    markdown = (results / "report.md").read_text()
    assert re.search(r'class="status status-failed" title="[^"]*">seed 1: failed<', html)
    assert re.search(
        r'class="status status-failed" title="[^"]*CUDA out of memory[^"]*">seed 0: failed<', html
    )
    assert re.search(r'class="status status-missing" title="[^"]*">seed 1: missing<', html)
    assert ">seed 0: missing<" in html and ">seed 1: missing<" in html  # frozen_ln never ran
    rows = {tuple(line.split(" | ")[:2]): line for line in markdown.splitlines() if line.startswith("| ")}
    failed = (("nofreeze", 0), ("nofreeze", 1), ("baseline", 1), ("frozen_ln", 0))
    for key in ((f"| {variant}", f"seed {seed}") for variant, seed in failed):
        row = rows[key]
        assert "FAILED" in row or "MISSING" in row
        assert "0.000" not in row and " 0.0 " not in row and "—" in row
    assert "| **nofreeze** | 0 / 2 | no successful run" in markdown
    assert "| **baseline** | 1 / 2 | 0.060 (n=1, no CI)" in markdown
    conclusions = markdown.split("## Conclusions", 1)[1].split("## Results", 1)[0]
    assert "did not finish" in conclusions and "CUDA out of memory" in conclusions
    assert "nofreeze vs baseline on test skill cannot be significant with 0 units" in conclusions
    convergence = markdown.split("### Convergence", 1)[1]
    baseline_row = next(line for line in convergence.splitlines() if line.startswith("| baseline |"))
    assert baseline_row.count("not reached") == 4  # ran 2 epochs: nothing at epochs 3 and 5


def test_report_refuses_bad_inputs(smoke_report: Path, tmp_path: Path, caplog) -> None:
    argv = report_argv(smoke_report, experiment())
    bad_json = list(argv)
    bad_json[bad_json.index("--experiment-json") + 1] = "{not json"
    assert report.main(bad_json) == 2
    assert "--experiment-json" in caplog.text
    missing = list(argv)
    missing[missing.index("--verification") + 1] = str(tmp_path / "nope.json")
    for flag in ("--out-html", "--out-md", "--plots-dir"):
        missing[missing.index(flag) + 1] = str(tmp_path / flag.strip("-"))
    assert report.main(missing) == 2
    assert "nope.json" in caplog.text
    assert not (tmp_path / "out-html").exists() and not (tmp_path / "plots-dir").exists()
