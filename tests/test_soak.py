"""A small soak in CI: faults and a restart, and still nothing lost or paid twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.soak import run_soak


@pytest.mark.slow
@pytest.mark.parametrize("api", ["task", "clip"])
async def test_a_hundred_tasks_through_faults_and_a_restart_lose_nothing_and_pay_nothing_twice(
    tmp_path: Path, api: str
) -> None:
    report = await run_soak(100, speed=400.0, fault_rate=0.2, api=api, data_dir=tmp_path)
    assert report.lost == 0
    assert report.duplicates == 0
    # The faults really happened and the run still finished its work.
    assert report.upstream_requests > report.tasks
    assert report.submitted + report.refused_for_good >= report.tasks - report.unknown
    assert report.complete + report.failed + report.unknown >= report.submitted
