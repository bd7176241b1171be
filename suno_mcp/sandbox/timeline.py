"""Each task's own true times, for benchmarks: when the upstream made it playable and complete.

A client only sees what its polls caught; the sandbox knows exactly when a preview became
playable, so "time to first playable / the upstream's own playable time" can be computed
without guessing. Times are given in model seconds after the submit, in real seconds (model
seconds / speed), as readings of the sandbox's clock (``time.monotonic`` unless a test passed
its own) and as wall-clock epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from suno_mcp.sandbox.faults import STATUS_WORDS

if TYPE_CHECKING:
    from suno_mcp.sandbox.state import Clip, SandboxState, Task


@dataclass(frozen=True)
class ClipTimes:
    """One clip's moments in model seconds after the submit; None for one that never comes."""

    id: str
    preview_s: float | None
    complete_s: float | None
    failed_s: float | None


@dataclass(frozen=True)
class Timeline:
    """When one task (music, lyrics, clip-API batch or concat) did what.

    ``first_playable_s``: the first clip's preview became playable. ``completed_s``: every clip
    had its final audio (lyrics: the text was ready). ``failed_s``: the task ended failed (every
    clip failed, a failed lyrics job, or the ``task_failure`` fault). ``fault_shown_s``: a task
    fault's status word appeared (``status:*``, ``stuck``). All None when it never happens.
    """

    id: str
    kind: str
    profile: str
    model: str | None
    fault: str | None
    speed: float
    submitted_clock: float
    submitted_wall: float
    elapsed_s: float
    first_playable_s: float | None
    completed_s: float | None
    failed_s: float | None
    fault_shown_s: float | None
    clips: tuple[ClipTimes, ...]

    def clock_at(self, model_s: float) -> float:
        """The sandbox clock reading at ``model_s`` model seconds after the submit."""
        return self.submitted_clock + model_s / self.speed

    def _moment(self, model_s: float | None) -> dict[str, Any] | None:
        if model_s is None:
            return None
        real_s = model_s / self.speed
        return {
            "model_s": round(model_s, 6),
            "real_s": round(real_s, 6),
            "clock": self.submitted_clock + real_s,
            "wall": self.submitted_wall + real_s,
            "reached": self.elapsed_s >= model_s,
        }

    def as_json(self) -> dict[str, Any]:
        """The timeline as served by ``GET /_sandbox/tasks/{id}/timeline``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "profile": self.profile,
            "model": self.model,
            "fault": self.fault,
            "speed": self.speed,
            "submitted": {"clock": self.submitted_clock, "wall": self.submitted_wall},
            "elapsed_s": round(self.elapsed_s, 6),
            "first_playable": self._moment(self.first_playable_s),
            "completed": self._moment(self.completed_s),
            "failed": self._moment(self.failed_s),
            "fault_shown": self._moment(self.fault_shown_s),
            "clips": [
                {"id": c.id, "preview_s": c.preview_s, "complete_s": c.complete_s, "failed_s": c.failed_s}
                for c in self.clips
            ],
        }


def epoch_of(created_at: str) -> float:
    """Epoch seconds of a ``created_at`` stamp (``2024-07-22T07:56:36.710Z``)."""
    # created_at is read from the wall clock in the same instant as the submit's clock reading.
    parsed = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _clip_times(clip: Clip, faulted: bool) -> ClipTimes:
    if faulted:
        return ClipTimes(clip.id, None, None, None)
    if clip.failure is not None:
        return ClipTimes(clip.id, None, None, clip.preview_at_s)
    return ClipTimes(clip.id, clip.preview_at_s, clip.complete_at_s, None)


def _find(state: SandboxState, some_id: str) -> tuple[str, str, Task | None, list[Clip]]:
    """(key, kind, task, clips) for a task id, a clip id or a clip-API batch id."""
    task = state.tasks.get(some_id)
    if task is None:
        clip = state.clips.get(some_id)
        if clip is not None and clip.kind == "concat":
            return clip.id, "concat", None, [clip]
        key = clip.batch_id if clip is not None else some_id
        task = state.tasks.get(key)
        if task is None:
            batch = [c for c in state.clips.values() if c.batch_id == key and c.kind != "concat"]
            if not batch:
                raise KeyError(some_id)
            return key, "music", None, batch
    return task.id, task.kind, task, [state.clips[c] for c in task.clip_ids]


def build_timeline(state: SandboxState, some_id: str) -> Timeline:
    """The timeline of the task behind ``some_id`` (a task, clip or clip-API batch id)."""
    key, kind, task, clips = _find(state, some_id)
    fault = state.task_faults.get(key)
    if task is not None and task.kind == "lyrics":
        submitted_at, created_at, model = task.submitted_at, task.created_at, None
        times: tuple[ClipTimes, ...] = ()
        ok = fault is None and task.failure is None
        first_playable = None
        completed = task.ready_at_s if ok else None
        failed = task.ready_at_s if fault is None and task.failure is not None else None
        shown = state.lyrics_held_from_s(task) if fault is not None else None
    else:
        first = clips[0]
        submitted_at, created_at, model = first.submitted_at, first.created_at, first.model_name
        times = tuple(_clip_times(c, fault is not None) for c in clips)
        previews = [t.preview_s for t in times if t.preview_s is not None]
        first_playable = min(previews) if previews else None
        completes = [t.complete_s for t in times]
        completed = max(c for c in completes if c is not None) if None not in completes else None
        fails = [t.failed_s for t in times]
        failed = max(f for f in fails if f is not None) if fault is None and None not in fails else None
        shown = min(state.held_from_s(c) for c in clips) if fault is not None else None
    if fault == "task_failure":
        failed = shown
    if fault is not None and STATUS_WORDS.get(fault) is None:
        shown = None  # task_failure shows no status word of its own: its items stay queued
    return Timeline(
        id=key,
        kind=kind,
        profile=state.task_profiles.get(key, state.profile.name),
        model=model,
        fault=fault,
        speed=state.config.speed,
        submitted_clock=submitted_at,
        submitted_wall=epoch_of(created_at),
        elapsed_s=state.elapsed(submitted_at),
        first_playable_s=first_playable,
        completed_s=completed,
        failed_s=failed,
        fault_shown_s=shown,
        clips=times,
    )
