"""Mutation check: break the code on purpose and show that the tests notice.

    .venv/bin/python tests/mutation_check.py            # every mutation (about 5 minutes on 2 cores)
    .venv/bin/python tests/mutation_check.py no_holm    # only the named ones

For each mutation the repository (tracked and untracked, non-ignored files) is copied to a
temporary directory, one exact piece of code is replaced there, and the test files that guard
it run against the copy (``python -m pytest -x`` from the copy's root, so the copy's
``workflow_scripts`` is the one imported). A mutation must make those tests FAIL. First the
same test files run once against an unmutated copy, which must pass, so a failure is the
mutation's doing. Exit status 0 only when the baseline passes and every mutation is caught; a
mutation whose code is no longer found is an error (the check must follow the code).

The output of one run is in tests/README.md ("Mutation check").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str
    replacements: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]


PAIRED = "workflow_scripts/reporting/paired.py"
POWER = "workflow_scripts/reporting/power.py"
CONTROLS = "workflow_scripts/reporting/controls.py"
STATS_TESTS = ("tests/test_stats_paired.py", "tests/test_power.py")
WARNING_TESTS = ("tests/test_report_control_warning.py",)
CI_TESTS = ("tests/test_ci.py",)
RIDGE = "workflow_scripts/training/ridge.py"

MUTATIONS = (
    Mutation(
        "one_sided_p",
        "exact sign-flip p counts only patterns whose sum is at least the observed sum (one-sided)",
        PAIRED,
        (
            (
                "    observed = np.abs(data.sum(axis=1))\n    permuted = np.abs(data @ signs.T)\n",
                "    observed = data.sum(axis=1)\n    permuted = data @ signs.T\n",
            ),
        ),
        STATS_TESTS,
    ),
    Mutation(
        "no_holm",
        "holm() returns the raw p-values",
        PAIRED,
        (("        running = max(running, min(1.0, (m - rank) * p))\n", "        running = min(1.0, p)\n"),),
        ("tests/test_stats_paired.py", "tests/test_report_conclusions.py"),
    ),
    Mutation(
        "circular_mde",
        "the MDE solved with the noncentral-t power (the old, circular method) at every n",
        POWER,
        (
            (
                "    if n > EXACT_MAX_N:\n        return float(optimize.brentq(",
                "    if n >= 2 and min_attainable_p(n) <= level:\n        return float(optimize.brentq(",
            ),
        ),
        ("tests/test_power.py",),
    ),
    Mutation(
        "units_needed_by_t_power",
        "units needed from the noncentral-t power instead of the exact test's",
        POWER,
        (
            (
                "    while n <= max_n and sign_flip_power(effect, n, level) < power:",
                "    while n <= max_n and t_test_power(effect, n, level) < power:",
            ),
            (
                "    while n - 1 >= floor and sign_flip_power(effect, n - 1, level) >= power:",
                "    while n - 1 >= floor and t_test_power(effect, n - 1, level) >= power:",
            ),
        ),
        ("tests/test_power.py",),
    ),
    Mutation(
        "one_sided_t_power",
        "t_test_power one-sided (critical value at 1 - α)",
        POWER,
        (("    crit = _st.t.ppf(1 - alpha / 2, df)\n", "    crit = _st.t.ppf(1 - alpha, df)\n"),),
        ("tests/test_power.py",),
    ),
    Mutation(
        "normal_approx_t_power",
        "t_test_power by the normal approximation",
        POWER,
        (
            ("    crit = _st.t.ppf(1 - alpha / 2, df)\n", "    crit = _st.norm.ppf(1 - alpha / 2)\n"),
            (
                "_st.nct.sf(crit, df, ncp) + _st.nct.cdf(-crit, df, ncp)",
                "_st.norm.sf(crit - ncp) + _st.norm.cdf(-crit - ncp)",
            ),
        ),
        ("tests/test_power.py",),
    ),
    Mutation(
        "sentence_says_80_percent",
        "the MDE sentence states '80% power' whatever the power is",
        "workflow_scripts/reporting/conclusions.py",
        (("({_power_words(row.mde_power)} at α/m", "(80% power at α/m"),),
        ("tests/test_report_conclusions.py",),
    ),
    Mutation(
        "budget_curve_unpaired",
        "the budget curve pairs one arm's unit with the next unit of the other (the pairing is lost)",
        "workflow_scripts/reporting/budget.py",
        (
            (
                '        row = compare_pair(a_points[step], b_points[step], "test_skill")\n',
                "        keys = sorted(b_points[step])\n"
                "        rotated = [b_points[step][k] for k in keys[1:] + keys[:1]]\n"
                "        shifted = dict(zip(keys, rotated, strict=True))\n"
                '        row = compare_pair(a_points[step], shifted, "test_skill")\n',
            ),
        ),
        ("tests/test_budget_report.py",),
    ),
    Mutation(
        "budget_curve_by_rank",
        "the budget curve matches the arms' units by rank, not by unit",
        "workflow_scripts/reporting/budget.py",
        (
            (
                '        row = compare_pair(a_points[step], b_points[step], "test_skill")\n',
                "        ranked_a = dict(enumerate(sorted(a_points[step].values())))\n"
                "        ranked_b = dict(enumerate(sorted(b_points[step].values())))\n"
                '        row = compare_pair(ranked_a, ranked_b, "test_skill")\n',
            ),
        ),
        ("tests/test_budget_report.py",),
    ),
    Mutation(
        "heterogeneity_across_seeds",
        "the heterogeneity test permutes the whole matrix, not within seeds (a seed's offset leaks in)",
        "workflow_scripts/reporting/heterogeneity.py",
        (
            (
                "    permuted = np.take_along_axis(matrix[None, :, :], orders[picks], axis=2)\n",
                "    flat = matrix.reshape(-1)\n"
                "    shuffled = [rng.permutation(flat).reshape(matrix.shape) for _ in range(permutations)]\n"
                "    permuted = np.stack(shuffled)\n",
            ),
        ),
        ("tests/test_heterogeneity.py",),
    ),
    Mutation(
        "control_detected_on_mse_alone",
        "a positive control counts as detected when squared errors alone detect it",
        "workflow_scripts/reporting/controls.py",
        (
            (
                "    if on_mse and on_mae:\n        return DETECTED\n",
                "    if on_mse:\n        return DETECTED\n",
            ),
        ),
        ("tests/test_controls.py",),
    ),
    Mutation(
        "no_warning_block",
        "the warning block deleted from the shared headline section (both formats)",
        "workflow_scripts/reporting/templates/section_headline.j2",
        (("{% if headline.warning %}\n\n{{ f.para(f.strong(headline.warning | t)) }}\n{% endif %}\n", ""),),
        WARNING_TESTS,
    ),
    Mutation(
        "uninformative_rows_kept",
        "contrasts in which every run is never keep their row and sentence",
        "workflow_scripts/reporting/uninformative.py",
        (("    return bool(values) and all(value == NEVER for value in values)\n", "    return False\n"),),
        ("tests/test_report_uninformative.py",),
    ),
    Mutation(
        "warning_on_yes",
        "the warning also shown when the answer is Yes",
        CONTROLS,
        (("headline.answer in (NO, CANNOT_TELL)", "True"),),
        WARNING_TESTS,
    ),
    Mutation(
        "warning_when_not_run",
        "the warning also shown when the positive control was not run",
        CONTROLS,
        (("warned = status not in (DETECTED, NOT_RUN) and", "warned = status != DETECTED and"),),
        WARNING_TESTS,
    ),
    Mutation(
        "skipped_cluster",
        "a Slurm cluster that fails to start (exit other than 77) is skipped",
        "tests/test_slurm.py",
        (('pytest.fail(f"Slurm test cluster did not', 'pytest.skip(f"Slurm test cluster did not'),),
        CI_TESTS,
    ),
    Mutation(
        "component_missing_is_skip",
        "a missing component is skipped even when STAGE1_REQUIRE_COMPONENTS is set",
        "tests/components.py",
        (("    if required(component):\n", "    if False:\n"),),
        CI_TESTS,
    ),
    Mutation(
        "ci_ignores_apt_failure",
        ".ci/run carries on when apt-get install fails",
        ".ci/run",
        (('      return "$status"\n    fi\n  fi\n', "      true\n    fi\n  fi\n"),),
        CI_TESTS,
    ),
    Mutation(
        "ci_does_not_require_components",
        ".ci/run runs pytest without STAGE1_REQUIRE_COMPONENTS=1",
        ".ci/run",
        (("export STAGE1_REQUIRE_COMPONENTS=1\n", ""),),
        CI_TESTS,
    ),
    Mutation(
        "masks_drawn_in_bulk",
        "the batches built ahead draw every step's masks in one call (another order of draws)",
        "workflow_scripts/training/feed.py",
        (("            batches=steps,\n", ""),),
        ("tests/test_feed.py",),
    ),
    Mutation(
        "clip_scales_up",
        "clip_gradients scales by max_norm / norm without clamping at 1 (small gradients grow)",
        "workflow_scripts/training/optim.py",
        (("torch.clamp(max_norm / (total + 1e-6), max=1.0)", "max_norm / (total + 1e-6)"),),
        ("tests/test_feed.py",),
    ),
    Mutation(
        "penalised_intercept",
        "the ridge reference's intercept penalised like the weights (predictions shrink towards 0)",
        RIDGE,
        (("    penalty[-1, -1] = 0.0\n", ""),),
        ("tests/test_reference.py",),
    ),
    Mutation(
        "ridge_target_field_only",
        "the ridge sees only the target field of each neighbour (the other fields and the range zeroed)",
        RIDGE,
        (
            (
                "    fields = torch.where(is_price, priced, own)\n",
                "    fields = torch.where(is_price, priced, own) * torch.eye(n_fields)\n",
            ),
            ("(priced[..., high] - priced[..., low])[..., None]", "0 * fields[..., :1]"),
        ),
        ("tests/test_reference.py",),
    ),
)


def copy_repository(destination: Path) -> None:
    """Tracked and untracked (not ignored) files, as git sees the working tree."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listing.split("\0")):
        source = REPO / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def mutate(root: Path, mutation: Mutation) -> None:
    path = root / mutation.path
    text = path.read_text()
    for old, new in mutation.replacements:
        if text.count(old) != 1:
            raise SystemExit(f"{mutation.name}: expected exactly one {old!r} in {mutation.path}")
        text = text.replace(old, new)
    path.write_text(text)


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, str, float]:
    switches = ("STAGE1_REQUIRE_COMPONENTS", "SLURM_TEST_REQUIRED")  # as a developer runs them
    env = {k: v for k, v in os.environ.items() if k not in switches}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def first_failure(output: str) -> str:
    match = re.search(r"^FAILED (.+?)(?: - |$)", output, flags=re.MULTILINE)
    return match.group(1) if match else "(no FAILED line; see the output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        base = Path(scratch) / "baseline"
        copy_repository(base)
        all_tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, output, seconds = run_tests(base, all_tests)
        print(f"baseline (no mutation): {' '.join(all_tests)} -> exit {code} in {seconds:.0f}s")
        if code != 0:
            print(output[-4000:])
            print("the unmutated copy must pass first")
            return 1
        survived = []
        print(f"| mutation | what | tests | result ({len(chosen)} mutations) |")
        print("|---|---|---|---|")
        for mutation in chosen:
            root = Path(scratch) / mutation.name
            shutil.copytree(base, root)
            mutate(root, mutation)
            code, output, seconds = run_tests(root, mutation.tests)
            caught = code != 0
            if not caught:
                survived.append(mutation.name)
            result = f"caught, exit {code}: {first_failure(output)}" if caught else "SURVIVED (tests passed)"
            tests = ", ".join(Path(t).name for t in mutation.tests)
            print(f"| {mutation.name} | {mutation.what} | {tests} | {result} ({seconds:.0f}s) |", flush=True)
            shutil.rmtree(root)
    verdict = f"; SURVIVED: {', '.join(survived)}" if survived else ""
    print(f"{len(chosen) - len(survived)} of {len(chosen)} mutations caught{verdict}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
