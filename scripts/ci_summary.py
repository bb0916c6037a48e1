"""The end of `.ci/run`: coverage of keras_rec per tier and together, and the slowest tests.

    .venv/bin/python scripts/ci_summary.py build/ci

Reads what `.ci/run` leaves in the reports directory: `<tier>.coverage`
(coverage.py data, every process of the tier combined: tests/coverage_startup) and `<tier>.xml`
(pytest's JUnit XML, a `time` per test: setup, call and teardown) for the tiers
`default` and `large`. Prints the line coverage of each tier, of both
together, and the 15 slowest tests; ends with one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import sys
import xml.etree.ElementTree as ElementTree

TIERS = ("default", "large")
SLOWEST = 15


def coverage_percent(data_files: list[pathlib.Path]) -> float | None:
    """Line coverage (%) of keras_rec over the union of `data_files` (None when none exist)."""
    import coverage

    existing = [path for path in data_files if path.is_file()]
    if not existing:
        return None
    combined = coverage.CoverageData(no_disk=True)
    for path in existing:
        data = coverage.CoverageData(basename=str(path))
        data.read()
        combined.update(data)
    cov = coverage.Coverage(data_file=None)
    cov.get_data().update(combined)
    return round(cov.report(file=io.StringIO()), 2)


def test_times(xml_files: list[pathlib.Path]) -> list[tuple[float, str, str]]:
    """`(seconds, tier, test id)` of every test case in the JUnit XML files, slowest first."""
    times = []
    for path in xml_files:
        if not path.is_file():
            continue
        for case in ElementTree.parse(path).iter("testcase"):
            # pytest-xdist's `--dist loadgroup` suffixes each test id with `@<group>`.
            test = case.get("name", "").split("@")[0]
            name = f"{case.get('classname', '').replace('.', '/')}.py::{test}"
            times.append((float(case.get("time", 0.0)), path.stem, name))
    return sorted(times, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", type=pathlib.Path, help="the reports directory of .ci/run")
    args = parser.parse_args(argv)
    coverage_by = {tier: coverage_percent([args.reports / f"{tier}.coverage"]) for tier in TIERS}
    coverage_by["both"] = coverage_percent([args.reports / f"{t}.coverage" for t in TIERS])
    times = test_times([args.reports / f"{tier}.xml" for tier in TIERS])
    seconds = {tier: round(sum(t for t, which, _ in times if which == tier), 1) for tier in TIERS}
    print("\n=== CI summary ===")
    for tier, percent in coverage_by.items():
        shown = "not run" if percent is None else f"{percent:.1f}%"
        print(f"line coverage of keras_rec, {tier} tier{'s' if tier == 'both' else ''}: {shown}")
    print(f"\n{SLOWEST} slowest tests (setup + call + teardown):")
    for duration, tier, name in times[:SLOWEST]:
        print(f"{duration:8.1f} s  {tier:<7} {name}")
    print(
        json.dumps(
            {
                "coverage_percent": coverage_by,
                "test_seconds": seconds,
                "slowest": [
                    {"seconds": round(t, 1), "tier": tier, "test": name}
                    for t, tier, name in times[:SLOWEST]
                ],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
