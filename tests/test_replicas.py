"""A small multi-replica soak in CI: replicas on one PostgreSQL, tenants, faults and a SIGKILL.

The full-size run is ``bench/replicas.py``; both use ``tests/support/replicas.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, fresh_database
from tests.support.replicas import SoakSpec, run_replica_soak

SMALL = SoakSpec(replicas=3, tenants=3, tasks=40, clients=20, speed=30.0)


@pytest.mark.slow
async def test_replicas_with_a_replica_killed_lose_nothing_pay_nothing_twice_and_leak_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    with fresh_database(postgres_server) as url:
        report = await run_replica_soak(SMALL, database_url=url, workdir=tmp_path)
    summary = f"{report}"
    assert report.lost == 0, summary
    assert report.duplicates == 0, summary
    assert report.cross_leaks == 0, summary
    # The run did its work through faults and the kill, on every replica, and did try to leak.
    assert report.killed is not None, summary
    assert report.refused == 0, summary
    assert report.with_id + report.unknown == SMALL.tasks, summary
    assert report.complete + report.failed == report.with_id, summary
    assert report.faults_fired > 0, summary
    assert report.cross_reads > 0, summary
    assert all(report.calls_by_replica[i] > 0 for i in range(SMALL.replicas)), summary
