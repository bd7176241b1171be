"""Multi-replica soak: R replicas on one PostgreSQL and one faulty sandbox, a replica killed and the
database restarted halfway.

The harness lives in ``tests/support/replicas.py`` (CI runs a small version of it); this script runs it
at full size, then runs the same workload on a single process (one replica, no kill) for the
upstream-fetch baseline, and prints both side by side with the goals. Run from the repository root:

    python -m bench.replicas [--replicas 3] [--tenants 5] [--tasks 500] [--clients 200]
                             [--speed 10] [--faults '500:0.1,429:0.05,drop:0.05'] [--small]
                             [--read-every 10] [--server-key] [--no-baseline]
                             [--no-db-restart] [--db-restart-at 0.5] [--db-down 2]

PostgreSQL comes from the binaries on this machine (``initdb``/``pg_ctl``, as the tests start it).
By default the database is stopped (immediate mode, as by a crash) when ``--db-restart-at`` of the
tasks have an id, stays down ``--db-down`` seconds and is started again; the table then gives, per
replica, the seconds from the database accepting connections again until its ``/readyz`` answers 200
and until a tool call sent to it succeeds (goal: every replica within 10 s). The baseline gets the
same restart, so the fetch ratio compares like with like.
``--read-every`` is the model seconds between one client's status reads. Clients read again a while
after each answer, so a faster deployment is read more often: the fetches per status read are printed
beside the fetches per task for that reason. ``--server-key`` runs with one server-wide key instead of team mode (per-request keys): the
cross-tenant figure then means nothing and is not printed as a goal.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import anyio

from tests.support.postgres import PostgresServer, find_binaries, fresh_database, running_postgres
from tests.support.replicas import (
    BEFORE_LIMIT_S,
    LEGACY_STATELESS,
    MODERN_PROTOCOL,
    SoakReport,
    SoakSpec,
    run_replica_soak,
)

SMALL = {"replicas": 3, "tenants": 3, "tasks": 40, "clients": 20, "speed": 30.0}
FETCH_RATIO_GOAL = 1.2
BACK_GOAL_S = 10.0  # every replica serving again this soon after the database's return

ROWS = [
    ("tasks with an id", "with_id", None),
    ("complete / failed", None, None),
    ("outcome unknown (id never learned)", "unknown", None),
    ("  of which paid upstream", "paid_without_id", None),
    ("refused after every retry", "refused", None),
    ("lost tasks", "lost", "0"),
    ("paid submits / distinct", None, None),
    ("duplicate paid submits", "duplicates", "0"),
    ("cross-tenant reads tried", "cross_reads", None),
    ("cross-tenant reads that succeeded", "cross_leaks", "0"),
    ("upstream fetches per task", "fetches_per_task", None),
    ("status reads per task (by the clients)", "reads_per_task", None),
    ("upstream fetches per status read", "fetches_per_read", None),
    ("upstream fetches, all (cross reads too)", "fetches_total", None),
    ("upstream faults injected", "faults_fired", None),
    ("get_task_status(wait=0) calls", "status_calls", None),
    ("get_task_status(wait=0) p50 ms", "p50_ms", None),
    ("get_task_status(wait=0) p99 ms", "p99_ms", None),
    ("calls answered per replica", "calls_by_replica", None),
    ("replica killed / back after s", None, None),
    ("ids a client got, not in the ledger at end", "unrecorded", "0"),
    ("adopted rows / journal lines left", None, None),
    ("replica /readyz 200 before DB stop, s", "ready_before_s", None),
    ("database down s / tasks with an id then", None, None),
    ("replica /readyz 200 after DB back, s", "ready_back_s", None),
    ("replica first good call after DB back, s", "call_back_s", None),
    ("replica back after DB restart, max s", None, f"<= {BACK_GOAL_S:g}"),
    ("wall seconds", "seconds", None),
]


_DB_FIGURES = {"ready_back_s", "ready_before_s", "call_back_s"}


def _cell(report: SoakReport, attr: str | None, label: str) -> str:
    if attr in _DB_FIGURES and not report.db_restarted:
        return "-"
    if attr == "ready_before_s":
        before = report.ready_before_s.items()
        return str({i: f">{BEFORE_LIMIT_S:g}" if t is None else t for i, t in before}).replace("'", "")
    if attr is not None:
        return str(getattr(report, attr))
    if label.startswith("complete"):
        return f"{report.complete} / {report.failed}"
    if label.startswith("paid submits"):
        return f"{report.paid_submits} / {report.distinct_paid}"
    if label.startswith("database down"):
        return f"{report.db_down_s} / {report.db_stopped_at}" if report.db_restarted else "-"
    if label.startswith("adopted"):
        return f"{report.adopted_rows} / {report.journal_left}"
    if label.startswith("replica back"):
        back = _back_after_db(report)
        return "-" if back is None else str(back)
    if report.killed is None:
        return "-"
    return f"#{report.killed} / {report.restart_s}"


def _back_after_db(report: SoakReport) -> float | None:
    """The slowest replica's way back after the database restart (readiness and a good call, the
    later of the two); inf when one never came back; None without a restart."""
    if not report.db_restarted:
        return None
    times = [*report.ready_back_s.values(), *report.call_back_s.values()]
    return max((float("inf") if t is None else t for t in times), default=float("inf"))


def print_table(run: SoakReport, baseline: SoakReport | None) -> bool:
    """Print the figures; True when every goal is met."""
    heads = [f"{run.replicas} replicas", "1 process"] if baseline else [f"{run.replicas} replicas"]
    rows = [["figure", *heads, "goal"]]
    for label, attr, goal in ROWS:
        if label.startswith("cross") and not run.team:
            continue
        cells = [_cell(run, attr, label)] + ([_cell(baseline, attr, label)] if baseline else [])
        rows.append([label, *cells, goal or ""])
    ratio = None
    if baseline is not None and baseline.fetches_per_task > 0:
        ratio = round(run.fetches_per_task / baseline.fetches_per_task, 2)
        rows.append(["fetches per task, ratio to 1 process", str(ratio), "", f"<= {FETCH_RATIO_GOAL}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for report in (run, baseline):
        if report is not None and report.not_ready:
            print(
                f"\n/readyz answers other than 200 after the database's return, {report.replicas} replica(s):"
            )
            for reason, count in report.not_ready.items():
                print(f"  {count:6d}  {reason}")
    for report in (run, baseline):
        if report is not None and report.errors:
            print(f"\nfailed calls with {report.replicas} replica(s), retried or polled again:")
            for kind, count in report.errors.items():
                print(f"  {count:6d}  {kind}: {report.error_samples.get(kind, '')[:160]!r}")
    met = run.with_id > 0 and run.refused == 0 and run.lost == 0 and run.duplicates == 0
    met = met and (run.cross_leaks == 0 or not run.team) and run.unrecorded == 0
    back = _back_after_db(run)
    met = met and (back is None or back <= BACK_GOAL_S)
    return met and (ratio is None or ratio <= FETCH_RATIO_GOAL)


def _spec(args: argparse.Namespace) -> SoakSpec:
    defaults = dict(SMALL) if args.small else {}
    sizes = {
        k: getattr(args, k) if getattr(args, k) is not None else defaults.get(k, getattr(SoakSpec, k))
        for k in SMALL
    }
    return SoakSpec(
        **sizes,
        faults=args.faults,
        poll_every_s=args.read_every,
        team=not args.server_key,
        db_restart=not args.no_db_restart,
        db_restart_at=args.db_restart_at,
        db_down_s=args.db_down,
        protocol=LEGACY_STATELESS if args.legacy_stateless else MODERN_PROTOCOL,
    )


def _run(spec: SoakSpec, server: PostgresServer, url: str, keep: Path | None, name: str) -> SoakReport:
    if keep is not None:
        # The processes' logs and data directories stay for a look afterwards.
        workdir = keep / name
        workdir.mkdir(parents=True, exist_ok=True)
        return anyio.run(lambda: run_replica_soak(spec, database_url=url, workdir=workdir, postgres=server))
    with tempfile.TemporaryDirectory(prefix="suno-replicas-") as tmp:
        return anyio.run(lambda: run_replica_soak(spec, database_url=url, workdir=Path(tmp), postgres=server))


def main() -> None:
    """Run the soak (and its single-process baseline); exit non-zero when a goal is missed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for name, kind in (
        ("replicas", int),
        ("tenants", int),
        ("tasks", int),
        ("clients", int),
        ("speed", float),
    ):
        parser.add_argument(f"--{name}", type=kind, default=None)
    parser.add_argument("--faults", default=SoakSpec.faults)
    parser.add_argument("--read-every", type=float, default=SoakSpec.poll_every_s, metavar="MODEL_S")
    parser.add_argument("--small", action="store_true", help="a CI-sized run (still with a kill)")
    parser.add_argument("--server-key", action="store_true", help="one server-wide key, not team mode")
    parser.add_argument(
        "--legacy-stateless", action="store_true", help=f"speak {LEGACY_STATELESS}, not the envelope"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-process run")
    parser.add_argument("--no-db-restart", action="store_true", help="keep the database up throughout")
    parser.add_argument(
        "--db-restart-at",
        type=float,
        default=SoakSpec.db_restart_at,
        metavar="SHARE",
        help="restart the database when this share of the tasks have an id",
    )
    parser.add_argument(
        "--db-down",
        type=float,
        default=SoakSpec.db_down_s,
        metavar="S",
        help="seconds the database stays down",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and data directories here")
    args = parser.parse_args()
    spec = _spec(args)
    binaries = find_binaries()
    if binaries is None:
        sys.exit("PostgreSQL binaries (initdb, pg_ctl) not found: install the postgresql package")
    with running_postgres(binaries) as server:
        with fresh_database(server) as url:
            run = _run(spec, server, url, args.keep, "replicas")
        baseline = None
        if not args.no_baseline:
            with fresh_database(server) as url:
                single = dataclasses.replace(spec, replicas=1, kill=False)
                baseline = _run(single, server, url, args.keep, "single")
    sys.exit(0 if print_table(run, baseline) else 1)


if __name__ == "__main__":
    main()
