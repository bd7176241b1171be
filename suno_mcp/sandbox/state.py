"""The sandbox's world: its configuration, the tasks and clips it holds, and its counters.

Nothing here runs in the background. A clip stores when it was submitted and when (in model
time) its preview and its final audio become ready; every read works out the current phase from
the clock. That keeps thousands of tasks in flight cheap and lets tests drive the whole
lifecycle with a fake clock.

Model time is ``(clock() - submitted_at) * speed``. With the defaults a clip is

    submitted  ->  queued  ->  (generating)  ->  streaming  ->  complete     (or error)
    0 s           3 s         15 s              ~30 s          ~120 s

where "generating" is still ``queued`` to the clip API and already ``processing`` to the task
API, and each clip's preview and completion times are scaled by its own jitter of +-10%.
Those are the ``steady`` latency profile; other profiles (``profiles.py``) draw each task's
times from their own distributions, and can be switched while the sandbox runs.

Accounts: every API key is an account of its own. A task or clip belongs to the key that made
it and is invisible to any other key, exactly as if it did not exist: a fetch answers the same
404 as an unknown id, the feed leaves it out, and extending, covering or joining it is refused
as an unknown clip. The vendor's own behaviour across accounts is not documented (nothing in
its API pages speaks of it): this is our model of it, the one a multi-tenant client has to be
safe against. ``SandboxConfig(separate_accounts=False)`` lets every key see everything.
Keys are never kept: tasks and counters are filed under :func:`account_of` the key.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import itertools
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from suno_mcp.sandbox.audio import MusicStyle, style_from_request
from suno_mcp.sandbox.faults import STATUS_WORDS, FaultPlan, parse_fault_spec
from suno_mcp.sandbox.lyrics import Lyrics, make_title, write_lyrics
from suno_mcp.sandbox.profiles import DEFAULT_PROFILE, LatencyProfile, check_profile, resolve_profile
from suno_mcp.sandbox.ratelimit import RateLimiter, check_rate_limit
from suno_mcp.sandbox.timeline import Timeline, build_timeline

#: Any submitted text containing this word (any case) is refused as a content-policy violation.
CONTENT_POLICY_TRIGGER = "forbidden-word"

Clock = Callable[[], float]

# Phase boundaries as fractions of a clip's preview time.
_QUEUED_AT = 0.1
_GENERATING_AT = 0.5
# Lyrics tasks start processing after this fraction of their latency.
_LYRICS_PROCESSING_AT = 0.2
# A preview always holds at least this much audio, so a client can play something.
MIN_PREVIEW_S = 5.0

TASK_DEFAULT_MODEL = "chirp-v3-0"  # the task API's documented default
CLIP_DEFAULT_MODEL = "chirp-v3-5"  # the model of the clip API's example request

_FAILURES: tuple[tuple[str, str], ...] = (
    ("generation_failed", "Generation failed: the model could not render audio for this request."),
    ("audio_quality", "Generation failed: the audio did not pass quality checks. Please try again."),
    ("timeout", "Generation failed: the render took too long and was cancelled."),
)


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox behaves: timings (model seconds), randomness, faults, auth and load.

    ``preview_after_s`` / ``complete_after_s`` / ``lyrics_after_s`` are the ``steady`` profile's
    times (and what the server is told to expect); another ``profile`` draws its own. The rate
    limit (``rate_limit_rps``, ``rate_burst`` tokens, optionally one bucket per key) is off by
    default. ``separate_accounts`` (on by default) makes each key see only its own work.
    """

    speed: float = 1.0
    preview_after_s: float = 30.0
    complete_after_s: float = 120.0
    lyrics_after_s: float = 5.0
    clip_seconds: float = 60.0
    seed: int = 0
    faults: str = ""
    api_key: str | None = field(default=None, repr=False)
    slow_delay_s: float = 3.0
    retry_after_s: int = 1
    profile: str = DEFAULT_PROFILE
    rate_limit_rps: float | None = None
    rate_burst: int | None = None
    rate_limit_per_key: bool = False
    separate_accounts: bool = True

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if not 0 < self.preview_after_s <= self.complete_after_s:
            raise ValueError("need 0 < preview_after_s <= complete_after_s")
        if self.lyrics_after_s <= 0 or self.clip_seconds <= 0:
            raise ValueError("lyrics_after_s and clip_seconds must be positive")
        if self.slow_delay_s < 0 or self.retry_after_s < 0:
            raise ValueError("slow_delay_s and retry_after_s must not be negative")
        parse_fault_spec(self.faults)  # fail at startup, not on the first request
        check_profile(self.profile)
        check_rate_limit(self.rate_limit_rps, self.rate_burst)


class Phase(enum.Enum):
    """Where a clip (or lyrics task) is; each API family names these its own way."""

    SUBMITTED = "submitted"
    QUEUED = "queued"
    GENERATING = "generating"
    STREAMING = "streaming"
    COMPLETE = "complete"
    FAILED = "failed"


class SandboxError(Exception):
    """A request the sandbox refuses; the app renders it in the family's error shape."""

    def __init__(self, status: int, message: str, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class Segment:
    """A stretch of one style's endless piece: ``duration_s`` seconds from ``start_s``.

    With ``pcm`` set the stretch plays that recorded audio (an upload) from ``start_s`` instead,
    and ``style`` is only what the sandbox heard in it (used to continue or cover it).
    """

    style: MusicStyle
    start_s: float
    duration_s: float
    pcm: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class MusicRequest:
    """The fields of a music submit both families accept, already type-checked."""

    prompt: str = ""
    gpt_description_prompt: str = ""
    make_instrumental: bool | None = None
    mv: str | None = None
    tags: str = ""
    title: str = ""
    continue_clip_id: str | None = None
    continue_at: float | None = None
    task_id: str | None = None
    infill_start_s: float | None = None
    infill_end_s: float | None = None


@dataclass(eq=False, slots=True)
class Clip:
    """One generated piece of audio and everything needed to describe it later."""

    id: str
    batch_id: str
    submitted_at: float
    created_at: str
    preview_at_s: float
    complete_at_s: float
    title: str
    tags: str
    prompt: str
    gpt_description_prompt: str | None
    model_name: str
    instrumental: bool
    segments: tuple[Segment, ...]
    failure: tuple[str, str] | None = None
    kind: str = "gen"
    parent_id: str | None = None
    continue_at: float | None = None
    history_type: str = "gen"
    concat_history: tuple[str, ...] | None = None
    concat_cuts: tuple[float | None, ...] | None = None
    infill: bool = False
    cover_of: str | None = None
    account: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the finished audio, in seconds."""
        return float(sum(s.duration_s for s in self.segments))

    @property
    def style(self) -> MusicStyle:
        """The style the clip opens with (used for its cover)."""
        return self.segments[0].style

    @property
    def major_model_version(self) -> str:
        """``v3`` for ``chirp-v3-5`` and so on, as Suno reports it."""
        match = re.search(r"v(\d+)", self.model_name)
        return f"v{match.group(1)}" if match else "v3"


@dataclass(eq=False, slots=True)
class Task:
    """A task-API task: the clips of one music submit, or one lyrics job."""

    id: str
    kind: str
    submitted_at: float
    created_at: str
    clip_ids: tuple[str, ...] = ()
    ready_at_s: float = 0.0
    failure: tuple[str, str] | None = None
    lyrics: Lyrics | None = None
    prompt: str = ""
    account: str = ""


@dataclass
class SandboxStats:
    """What the sandbox has seen, for tests and the soak harness.

    ``requests`` counts every request per endpoint name (faulted ones too), ``responses`` per
    ``(endpoint, status code)``. ``tasks_created`` counts accepted submits (music, lyrics, clip
    API generate); ``created_by_endpoint`` adds concat jobs. ``submits_by_fingerprint`` counts
    accepted submits by :func:`fingerprint` of their body: a value above 1 means the same
    request was paid for twice. ``rate_limited`` counts, per endpoint, the 429s of the
    sandbox's own rate limit (fault-injected 429s are in ``faults_fired``).

    Per account (:func:`account_of` the key): ``paid_by_account`` counts the generation jobs
    it was charged for (every accepted submit, concat included; an upload is not paid), and
    ``fetches_by_account`` its authenticated ``fetch`` and ``feed`` requests, faulted and rate
    limited ones included: each is a request the client made upstream. ``fetches_by_task``
    counts those requests per task they named (a feed of two clips of one task counts once; a
    task is counted only for the account that owns it), so a benchmark can see how many reads
    each task cost.
    """

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)
    faults_fired: Counter[str] = field(default_factory=Counter)
    tasks_created: int = 0
    clips_created: int = 0
    created_by_endpoint: Counter[str] = field(default_factory=Counter)
    submits_by_fingerprint: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    paid_by_account: Counter[str] = field(default_factory=Counter)
    fetches_by_account: Counter[str] = field(default_factory=Counter)
    fetches_by_task: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        """The counters as a JSON-ready dict (``responses`` nested by endpoint then status).

        ``accounts`` maps each account to ``{"paid_submits": n, "fetches": n}`` and ``total``
        holds the sums of both.
        """
        responses: dict[str, dict[str, int]] = {}
        for (endpoint, status), n in sorted(self.responses.items()):
            responses.setdefault(endpoint, {})[str(status)] = n
        accounts = {
            name: {"paid_submits": self.paid_by_account[name], "fetches": self.fetches_by_account[name]}
            for name in sorted(set(self.paid_by_account) | set(self.fetches_by_account))
        }
        return {
            "requests": dict(self.requests),
            "responses": responses,
            "faults_fired": dict(self.faults_fired),
            "tasks_created": self.tasks_created,
            "clips_created": self.clips_created,
            "created_by_endpoint": dict(self.created_by_endpoint),
            "submits_by_fingerprint": dict(self.submits_by_fingerprint),
            "rate_limited": dict(self.rate_limited),
            "accounts": accounts,
            "total": {
                "paid_submits": sum(self.paid_by_account.values()),
                "fetches": sum(self.fetches_by_account.values()),
            },
            "fetches_by_task": dict(self.fetches_by_task),
        }


def account_of(key: str) -> str:
    """The account an API key stands for, as the sandbox files it: a short hash, never the key."""
    return "acct-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def fingerprint(endpoint: str, body: Mapping[str, Any]) -> str:
    """Canonical JSON of a submit body, tagged with its endpoint so lyrics and music never collide."""
    return json.dumps({"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"))


def _iso_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _auto_tags(style: MusicStyle) -> str:
    return ", ".join([*style.instruments, style.mode, f"{style.tempo_bpm} bpm"])


def _contains_trigger(*texts: str | None) -> bool:
    return any(t and CONTENT_POLICY_TRIGGER in t.casefold() for t in texts)


def content_policy_error() -> SandboxError:
    """The refusal a submit gets when its text trips the content policy."""
    return SandboxError(
        503,
        "Your request was rejected by the content policy: the prompt contains content that is not allowed.",
        "content_policy_violation",
    )


def take(segments: tuple[Segment, ...], seconds: float) -> tuple[Segment, ...]:
    """The first ``seconds`` of a clip's audio, as segments."""
    out: list[Segment] = []
    left = seconds
    for seg in segments:
        if left <= 0:
            break
        out.append(dataclasses.replace(seg, duration_s=min(seg.duration_s, left)))
        left -= seg.duration_s
    return tuple(out)


def _position(segments: tuple[Segment, ...], at_s: float) -> tuple[MusicStyle, float]:
    """Which style plays ``at_s`` seconds into a clip, and where that is in the style's piece."""
    pos = 0.0
    for seg in segments:
        if at_s < pos + seg.duration_s:
            return seg.style, seg.start_s + (at_s - pos)
        pos += seg.duration_s
    last = segments[-1]
    return last.style, last.start_s + last.duration_s + (at_s - pos)


class SandboxState:
    """Every task and clip, the fault plan and the counters of one sandbox."""

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock = time.monotonic) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock
        self.stats = SandboxStats()
        self.faults = FaultPlan(self.config.faults, seed=self.config.seed)
        self.tasks: dict[str, Task] = {}
        self.clips: dict[str, Clip] = {}
        # Timing jitter and style seeds come from one stream consumed in creation order, so a
        # seed and a request sequence reproduce the same run (ids stay random: see _new_id).
        self._rng = random.Random(f"{self.config.seed}:state")
        # Latency draws have their own stream, so changing the profile leaves styles alone.
        self._latency_rng = random.Random(f"{self.config.seed}:latency")
        self.profile = self._profile(self.config.profile)
        # Per task (or clip-API batch, or concat clip) id: the profile it was timed by, and the
        # task fault it carries. Kept beside the tasks rather than in them: most have neither.
        self.task_profiles: dict[str, str] = {}
        self.task_faults: dict[str, str] = {}
        self.rate_limiter: RateLimiter | None = None
        if self.config.rate_limit_rps is not None:
            self.set_rate_limit(
                self.config.rate_limit_rps, self.config.rate_burst, per_key=self.config.rate_limit_per_key
            )

    # -- faults -------------------------------------------------------------------------

    def inject(self, kind: str, endpoint: str | None = None, count: int = 1) -> None:
        """Make the next ``count`` matching requests show fault ``kind`` (before any random draw)."""
        self.faults.inject(kind, endpoint, count)

    def clear_faults(self) -> None:
        """Stop all faults: queued injections and the probabilistic rules alike."""
        self.faults.clear()

    def set_faults(self, spec: str) -> None:
        """Replace the probabilistic fault rules with a new spec string."""
        self.faults.set_spec(spec)

    # -- latency profiles and load -------------------------------------------------------

    def _profile(self, name: str) -> LatencyProfile:
        c = self.config
        return resolve_profile(
            name,
            preview_after_s=c.preview_after_s,
            complete_after_s=c.complete_after_s,
            lyrics_after_s=c.lyrics_after_s,
        )

    def set_profile(self, name: str) -> None:
        """Time tasks submitted from now on by profile ``name``; tasks already made keep theirs."""
        self.profile = self._profile(name)

    def set_rate_limit(self, rps: float | None, burst: int | None = None, *, per_key: bool = False) -> None:
        """Limit API requests to ``rps`` per second (``burst`` at once); ``rps=None`` lifts it."""
        check_rate_limit(rps, burst)
        self.rate_limiter = (
            None if rps is None else RateLimiter(rps, burst, per_key=per_key, clock=self.clock)
        )

    def admit(self, key: str) -> float | None:
        """None when an API request under ``key`` may go on; else seconds until it could."""
        return None if self.rate_limiter is None else self.rate_limiter.admit(key)

    def timeline(self, task_or_clip_id: str) -> Timeline:
        """When a task (or the task of a clip, or a clip-API batch) became playable and finished.

        Raises KeyError for an id the sandbox never made.
        """
        return build_timeline(self, task_or_clip_id)

    # -- accounts -------------------------------------------------------------------------

    def _visible(self, owner: str, account: str) -> bool:
        return not self.config.separate_accounts or owner == account

    def task_for(self, task_id: str, account: str = "") -> Task | None:
        """The task-API task ``task_id`` if ``account`` may see it (None also when unknown)."""
        task = self.tasks.get(task_id)
        return task if task is not None and self._visible(task.account, account) else None

    def clip_for(self, clip_id: str, account: str = "") -> Clip | None:
        """The clip ``clip_id`` if ``account`` may see it (None also when unknown)."""
        clip = self.clips.get(clip_id)
        return clip if clip is not None and self._visible(clip.account, account) else None

    # -- task faults ----------------------------------------------------------------------

    def _start_task(self, task_id: str, endpoint: str | None) -> None:
        self.task_profiles[task_id] = self.profile.name
        fault = self.faults.draw_task(endpoint) if endpoint is not None else None
        if fault is not None:
            self.task_faults[task_id] = fault
            self.stats.faults_fired[fault] += 1

    def held_from_s(self, clip: Clip) -> float:
        """Model seconds after which a clip of a faulted task shows its fault."""
        return clip.preview_at_s * _GENERATING_AT

    def lyrics_held_from_s(self, task: Task) -> float:
        """Model seconds after which a faulted lyrics task shows its fault."""
        return task.ready_at_s * _LYRICS_PROCESSING_AT

    def status_word(self, clip: Clip) -> str | None:
        """The odd status word a clip reports now because of its task's fault, if any."""
        word = STATUS_WORDS.get(self.task_faults.get(clip.batch_id, ""))
        if word is None or self.elapsed(clip.submitted_at) < self.held_from_s(clip):
            return None
        return word

    def lyrics_status_word(self, task: Task) -> str | None:
        """The odd status word a lyrics task reports now because of its fault, if any."""
        word = STATUS_WORDS.get(self.task_faults.get(task.id, ""))
        if word is None or self.elapsed(task.submitted_at) < self.lyrics_held_from_s(task):
            return None
        return word

    def task_failed_at_s(self, task: Task) -> float | None:
        """For a task with the ``task_failure`` fault: model seconds at which it fails."""
        if self.task_faults.get(task.id) != "task_failure":
            return None
        if task.kind == "lyrics":
            return self.lyrics_held_from_s(task)
        return min(self.held_from_s(self.clips[c]) for c in task.clip_ids)

    def rename_task(self, task_id: str, new_id: str) -> None:
        """Give a task-API task another id (the ``odd_id`` fault); the old id stops resolving."""
        task = self.tasks.pop(task_id)
        task.id = new_id
        self.tasks[new_id] = task
        for clip_id in task.clip_ids:
            self.clips[clip_id].batch_id = new_id
        for table in (self.task_profiles, self.task_faults):
            if task_id in table:
                table[new_id] = table.pop(task_id)

    # -- time ---------------------------------------------------------------------------

    def elapsed(self, since: float) -> float:
        """Model seconds since a clock reading."""
        return max(0.0, (self.clock() - since) * self.config.speed)

    def clip_phase(self, clip: Clip) -> Phase:
        """The phase a clip is in right now."""
        t = self.elapsed(clip.submitted_at)
        if clip.batch_id in self.task_faults:
            # A faulted task never gets audio: it waits in the queue, showing its fault.
            return Phase.QUEUED if t >= clip.preview_at_s * _QUEUED_AT else Phase.SUBMITTED
        if clip.failure is not None and t >= clip.preview_at_s:
            return Phase.FAILED
        if t >= clip.complete_at_s:
            return Phase.COMPLETE
        if t >= clip.preview_at_s:
            return Phase.STREAMING
        if t >= clip.preview_at_s * _GENERATING_AT:
            return Phase.GENERATING
        if t >= clip.preview_at_s * _QUEUED_AT or clip.kind == "concat":
            return Phase.QUEUED
        return Phase.SUBMITTED

    def progress(self, clip: Clip) -> float:
        """How far along a clip is, 0..1."""
        t = self.elapsed(clip.submitted_at)
        if clip.batch_id in self.task_faults:
            t = min(t, self.held_from_s(clip))
        return min(1.0, t / clip.complete_at_s)

    def streamed_s(self, clip: Clip) -> float:
        """Seconds of audio the preview holds now (whole seconds, at least MIN_PREVIEW_S)."""
        t = self.elapsed(clip.submitted_at)
        window = clip.complete_at_s - clip.preview_at_s
        fraction = 1.0 if window <= 0 else (t - clip.preview_at_s) / window
        seconds = max(MIN_PREVIEW_S, float(int(fraction * clip.duration_s)))
        return min(clip.duration_s, seconds)

    def lyrics_phase(self, task: Task) -> Phase:
        """The phase of a lyrics task right now."""
        t = self.elapsed(task.submitted_at)
        if task.id in self.task_faults:
            return Phase.QUEUED
        if t >= task.ready_at_s:
            return Phase.FAILED if task.failure is not None else Phase.COMPLETE
        if t >= task.ready_at_s * _LYRICS_PROCESSING_AT:
            return Phase.GENERATING
        return Phase.QUEUED

    # -- creating work ------------------------------------------------------------------

    def _new_id(self) -> str:
        # Random, not seeded: ids outlive the sandbox in a client's ledger, and a restarted
        # sandbox with the same seed must not hand out ids the ledger already holds.
        return str(uuid.uuid4())

    def _jitter(self) -> float:
        # One draw from the main stream per clip whatever the profile, so styles stay put.
        return 1.0 + self.profile.clip_jitter * self._rng.uniform(-1.0, 1.0)

    def _failure(self, endpoint: str) -> tuple[str, str] | None:
        if not self.faults.draw_render(endpoint):
            return None
        return self._rng.choice(_FAILURES)

    def _count_created(
        self, endpoint: str, body: Mapping[str, Any] | None, *, task: bool, account: str
    ) -> None:
        self.stats.created_by_endpoint[endpoint] += 1
        self.stats.paid_by_account[account] += 1
        if task:
            self.stats.tasks_created += 1
        if body is not None:
            self.stats.submits_by_fingerprint[fingerprint(endpoint, body)] += 1

    def create_music(
        self,
        request: MusicRequest,
        *,
        endpoint: str,
        body: Mapping[str, Any],
        fields_for: Callable[[int], dict[str, Any]] | None = None,
        created_as: str | None = None,
        account: str = "",
    ) -> tuple[str, list[Clip]]:
        """Accept a music submit (both families): return the task or batch id and two clips.

        ``fields_for`` (a cover, see covers.py) builds each clip's music from its seed instead of
        the request's text; ``created_as`` is the name the submit is counted under; ``account``
        owns the task and its clips (and must own a clip it continues).
        """
        has_text = request.prompt.strip() or request.gpt_description_prompt.strip()
        if not (has_text or request.continue_clip_id or fields_for is not None):
            raise SandboxError(400, "Invalid prompt: prompt cannot be empty", "invalid_request_error")
        if _contains_trigger(request.prompt, request.gpt_description_prompt, request.tags, request.title):
            raise content_policy_error()
        parent = self._parent_of(request, account)

        default_model = TASK_DEFAULT_MODEL if endpoint == "submit_music" else CLIP_DEFAULT_MODEL
        mv = request.mv or default_model
        uploaded = mv.endswith("-upload")
        model_name = mv.removesuffix("-upload")

        batch_id = self._new_id()
        now, created_at = self.clock(), _iso_now()
        latency = self.profile.draw_task(self._latency_rng, model_name)
        self._start_task(batch_id, endpoint)
        clips: list[Clip] = []
        for _ in range(2):
            seed = self._rng.getrandbits(31)
            jitter = self._jitter()
            if fields_for is not None:
                fields = fields_for(seed)
            elif parent is None:
                fields = self._fresh_fields(request, seed)
            else:
                fields = self._extension_fields(request, parent, uploaded)
            clip = Clip(
                id=self._new_id(),
                batch_id=batch_id,
                submitted_at=now,
                created_at=created_at,
                preview_at_s=latency.preview_s * jitter,
                complete_at_s=latency.complete_s * jitter,
                gpt_description_prompt=request.gpt_description_prompt or None,
                model_name=model_name,
                failure=self._failure(endpoint),
                infill=request.infill_start_s is not None and request.infill_end_s is not None,
                account=account,
                **fields,
            )
            clips.append(clip)
            self.clips[clip.id] = clip
        if endpoint == "submit_music":
            self.tasks[batch_id] = Task(
                id=batch_id,
                kind="music",
                submitted_at=now,
                created_at=created_at,
                clip_ids=tuple(c.id for c in clips),
                prompt=request.prompt,
                account=account,
            )
        self.stats.clips_created += len(clips)
        self._count_created(created_as or endpoint, body, task=True, account=account)
        return batch_id, clips

    def _parent_of(self, request: MusicRequest, account: str) -> Clip | None:
        if not request.continue_clip_id:
            return None
        parent = self.clip_for(request.continue_clip_id, account)
        if parent is None:
            raise SandboxError(404, f"Clip not found: {request.continue_clip_id}", "not_found_error")
        if self.clip_phase(parent) is not Phase.COMPLETE:
            raise SandboxError(
                400,
                f"Clip {parent.id} is not complete yet; it can be extended once it is complete",
                "invalid_request_error",
            )
        if parent.kind == "upload" and not (request.mv or "").endswith("-upload"):
            # The vendor continues uploaded audio only with an upload model.
            raise SandboxError(
                400,
                f"Clip {parent.id} is an uploaded clip: continue it with an upload model, "
                "the model name with the -upload suffix (e.g. mv: chirp-v3-5-upload)",
                "invalid_request_error",
            )
        at = request.continue_at
        if at is not None and not 0 <= at <= parent.duration_s:
            raise SandboxError(
                400,
                f"Invalid continue_at: must be between 0 and the clip's duration ({parent.duration_s:g} s)",
                "invalid_request_error",
            )
        return parent

    def _fresh_fields(self, request: MusicRequest, seed: int) -> dict[str, Any]:
        instrumental = bool(request.make_instrumental)
        description = request.gpt_description_prompt
        lyrics = request.prompt
        if not lyrics and description and not instrumental:
            # Inspiration mode with vocals: Suno writes the lyrics; one set per request.
            lyrics = write_lyrics(description, seed=self.config.seed).text
        title = request.title or make_title(description or request.prompt, seed=self.config.seed)
        style = style_from_request(
            tags=request.tags,
            description=description,
            lyrics=lyrics,
            title=title,
            instrumental=instrumental,
            seed=seed,
        )
        return {
            "title": title,
            "tags": request.tags or _auto_tags(style),
            "prompt": lyrics,
            "instrumental": instrumental,
            "segments": (Segment(style, 0.0, self.config.clip_seconds),),
        }

    def _extension_fields(self, request: MusicRequest, parent: Clip, uploaded: bool) -> dict[str, Any]:
        at = parent.duration_s if request.continue_at is None else float(request.continue_at)
        style, offset = _position(parent.segments, at)
        instrumental = parent.instrumental if request.make_instrumental is None else request.make_instrumental
        if request.tags:
            # New tags restyle the continuation; the seed is kept so the melody stays related.
            style = style_from_request(
                tags=request.tags,
                description=request.gpt_description_prompt,
                lyrics=request.prompt,
                title=request.title or parent.title,
                instrumental=instrumental,
                seed=style.seed,
            )
        return {
            "title": request.title or parent.title,
            "tags": request.tags or parent.tags,
            "prompt": request.prompt,
            "instrumental": instrumental,
            "segments": (Segment(style, offset, self.config.clip_seconds),),
            "parent_id": parent.id,
            "continue_at": at,
            "history_type": "upload" if uploaded else "gen",
        }

    def create_lyrics(self, prompt: str, *, body: Mapping[str, Any], account: str = "") -> Task:
        """Accept a lyrics submit and return its task (owned by ``account``)."""
        if not prompt.strip():
            raise SandboxError(400, "Invalid prompt: prompt cannot be empty", "invalid_request_error")
        if _contains_trigger(prompt):
            raise content_policy_error()
        task = Task(
            id=self._new_id(),
            kind="lyrics",
            submitted_at=self.clock(),
            created_at=_iso_now(),
            ready_at_s=self.profile.draw_lyrics(self._latency_rng) * self._jitter(),
            failure=self._failure("submit_lyrics"),
            lyrics=write_lyrics(prompt, seed=self._rng.getrandbits(31)),
            prompt=prompt,
            account=account,
        )
        self.tasks[task.id] = task
        self._start_task(task.id, "submit_lyrics")
        self._count_created("submit_lyrics", body, task=True, account=account)
        return task

    def chain(self, clip: Clip) -> list[Clip]:
        """The extension chain ending at ``clip``, root first."""
        chain = [clip]
        while chain[-1].parent_id is not None:
            chain.append(self.clips[chain[-1].parent_id])
        chain.reverse()
        return chain

    def create_concat(self, clip_id: str, account: str = "") -> Clip:
        """Join an extension chain into one new clip: root[0:c1] + ext1[0:c2] + ... + last.

        ``account`` must own ``clip_id`` (an extension chain never crosses accounts: a clip
        can only be continued by its owner) and owns the new clip.
        """
        last = self.clip_for(clip_id, account)
        if last is None:
            raise SandboxError(404, f"Clip not found: {clip_id}", "not_found_error")
        if self.clip_phase(last) is not Phase.COMPLETE:
            raise SandboxError(
                400, f"Clip {clip_id} is not complete yet; concatenate it once it is", "invalid_request_error"
            )
        chain = self.chain(last)
        segments: list[Segment] = []
        cuts: list[float | None] = []
        for clip, child in itertools.pairwise(chain):
            assert child.continue_at is not None  # every non-root link was made by an extension
            segments.extend(take(clip.segments, child.continue_at))
            cuts.append(child.continue_at)
        segments.extend(last.segments)
        cuts.append(None)
        root, jitter = chain[0], self._jitter()
        latency = self.profile.draw_task(self._latency_rng, last.model_name)
        clip = Clip(
            id=self._new_id(),
            batch_id=last.id,
            submitted_at=self.clock(),
            created_at=_iso_now(),
            preview_at_s=latency.preview_s * jitter,
            complete_at_s=latency.complete_s * jitter,
            title=root.title,
            tags=root.tags,
            prompt="",
            gpt_description_prompt=None,
            model_name=last.model_name,
            instrumental=root.instrumental and all(c.instrumental for c in chain),
            segments=tuple(segments),
            failure=self._failure("concat"),
            kind="concat",
            concat_history=tuple(c.id for c in chain),
            concat_cuts=tuple(cuts),
            account=account,
        )
        self.clips[clip.id] = clip
        self._start_task(clip.id, None)
        self.stats.clips_created += 1
        self._count_created("concat", None, task=False, account=account)
        return clip
