"""The task ledger: intent before submit, schema versions, two processes on one file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from suno_mcp.ledger import MIGRATIONS, Ledger
from suno_mcp.models import Clip, SavedFile, Status, Task


def _task(task_id: str, status: Status = Status.RUNNING, clips: int = 2) -> Task:
    return Task(
        task_id=task_id,
        api="task",
        status=status,
        clips=[Clip(id=f"{task_id}-c{i}", status=status, duration=30.0) for i in range(clips)],
    )


def test_an_intent_is_recorded_as_unknown_before_any_task_id_exists(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    local = ledger.record_intent(api="task", kind="music", request={"prompt": "x"}, fingerprint="f")
    record = ledger.get(local)
    assert record is not None
    assert record.status is Status.UNKNOWN
    assert record.task_id is None
    assert [r.local_id for r in ledger.recent(statuses=[Status.UNKNOWN])] == [local]
    ledger.close()


def test_a_submitted_task_is_found_by_task_id_and_by_any_clip_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    local = ledger.record_intent(api="task", kind="music", request={"prompt": "x"}, fingerprint="f")
    ledger.record_submitted(local, _task("t1"))
    assert ledger.get("t1") is not None
    by_clip = ledger.find_by_clip("t1-c1")
    assert by_clip is not None
    assert by_clip.task_id == "t1"
    assert ledger.find_by_clip("t1-c9") is None
    ledger.close()


def test_a_thinner_later_answer_keeps_the_clips_already_known(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    local = ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
    ledger.record_submitted(local, _task("t1"))
    ledger.update(_task("t1", Status.RUNNING, clips=0))
    record = ledger.get("t1")
    assert record is not None
    assert len(record.clips) == 2
    ledger.close()


def test_duplicates_are_found_within_the_window_and_never_among_refused_requests(tmp_path: Path) -> None:
    now = [1000.0]
    ledger = Ledger(tmp_path / "l.sqlite3", clock=lambda: now[0])
    refused = ledger.record_intent(api="task", kind="music", request={}, fingerprint="same")
    ledger.record_rejected(refused, "429")
    assert ledger.find_duplicate("same", 600) is None
    kept = ledger.record_intent(api="task", kind="music", request={}, fingerprint="same")
    ledger.record_submitted(kept, _task("t1"))
    found = ledger.find_duplicate("same", 600)
    assert found is not None
    assert found.task_id == "t1"
    now[0] += 601
    assert ledger.find_duplicate("same", 600) is None
    ledger.close()


def test_files_are_remembered_with_their_clip(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    local = ledger.record_intent(api="task", kind="music", request={}, fingerprint=None)
    ledger.record_submitted(local, _task("t1", Status.COMPLETE))
    ledger.record_file(
        SavedFile(
            clip_id="t1-c0",
            task_id="t1",
            path="/x/a.wav",
            url="http://u/a.wav",
            bytes=10,
            mime_type="audio/wav",
        )
    )
    record = ledger.get("t1")
    assert record is not None
    assert [f.path for f in record.files] == ["/x/a.wav"]
    ledger.close()


def test_the_schema_is_versioned_and_a_newer_one_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    assert ledger.schema_version == len(MIGRATIONS)
    ledger.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="upgrade suno-mcp"):
        Ledger(path)


def test_the_ledger_uses_write_ahead_logging(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_ledgers_on_one_file_write_at_once_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    first, second = Ledger(path), Ledger(path)
    per_writer = 200

    def write(ledger: Ledger, name: str) -> None:
        for i in range(per_writer):
            local = ledger.record_intent(api="task", kind="music", request={"i": i}, fingerprint=None)
            ledger.record_submitted(local, _task(f"{name}-{i}", clips=1))

    threads = [
        threading.Thread(target=write, args=(first, "a")),
        threading.Thread(target=write, args=(second, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(first.recent(limit=10_000)) == 2 * per_writer
    assert second.get("a-199") is not None
    assert first.get("b-199") is not None
    first.close()
    second.close()


def test_an_answer_that_leaves_a_clip_out_keeps_that_clip_in_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    local = ledger.record_intent(api="clip", kind="music", request={}, fingerprint=None)
    ledger.record_submitted(local, _task("t1"))
    ledger.update(
        Task(
            task_id="t1", api="clip", status=Status.COMPLETE, clips=[Clip(id="t1-c0", status=Status.COMPLETE)]
        )
    )
    record = ledger.get("t1")
    assert record is not None
    assert record.clip_ids == ("t1-c0", "t1-c1")
    assert record.clips[0].status is Status.COMPLETE
    assert ledger.find_by_clip("t1-c1") is not None
    ledger.close()


def test_a_claim_finds_a_live_duplicate_or_writes_the_intent_and_never_mixes_sandbox_and_real(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    first, none = ledger.claim(api="task", kind="music", request={}, fingerprint="fp", window_s=600)
    assert first
    assert none is None
    again, found = ledger.claim(api="task", kind="music", request={}, fingerprint="fp", window_s=600)
    assert again == ""
    assert found is not None
    assert found.local_id == first
    real, other = ledger.claim(
        api="task", kind="music", request={}, fingerprint="fp", window_s=600, sandbox=True
    )
    assert real
    assert other is None
    ledger.close()


def test_two_processes_claiming_the_same_request_at_once_write_one_intent(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    ledgers = [Ledger(path) for _ in range(4)]
    results: list[tuple[str, object]] = []
    barrier = threading.Barrier(len(ledgers))

    def claim(ledger: Ledger) -> None:
        barrier.wait(timeout=10)
        results.append(ledger.claim(api="task", kind="music", request={}, fingerprint="same", window_s=600))

    threads = [threading.Thread(target=claim, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == len(ledgers)
    assert sum(1 for local_id, _ in results if local_id) == 1
    assert len(ledgers[0].recent(limit=100)) == 1
    for ledger in ledgers:
        ledger.close()
