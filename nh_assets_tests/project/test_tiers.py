"""Every collected test is in exactly one tier, so ``scripts/test.sh --fast`` selects what it says
and no test falls outside every tier (run by none but the whole suite) or into two."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from nh_assets.settings import REPO_ROOT
from nh_assets_tests.support.tier_report import REPORT_ENV

pytestmark = pytest.mark.fast


def test_every_collected_test_has_exactly_one_tier_marker(tmp_path):
    report = tmp_path / "tiers.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "nh_assets_tests.support.tier_report"],
        cwd=REPO_ROOT, env={**os.environ, REPORT_ENV: str(report)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = json.loads(report.read_text())
    assert len(found) > 400  # the whole suite was collected, not a corner of it
    assert {test: marks for test, marks in found.items() if len(marks) != 1} == {}
