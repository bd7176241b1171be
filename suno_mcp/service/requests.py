"""Building the requests to send: every check the catalog and the ledger can answer, before sending.

A mixin of :class:`suno_mcp.service.core.SunoService`. The checks themselves are the domain's
(:mod:`suno_mcp.domain.inputs`); what needs this service's catalog, settings or ledger is decided
here: which model variant an uploaded or covered clip needs, whether the clip is known and complete,
which words a cover sings, which task an extension follows. Each method raises ArgumentError, with
text that says what to pass instead, and none of them sends anything upstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from suno_mcp.domain.catalog import Catalog
from suno_mcp.domain.inputs import (
    ArgumentError,
    check_limits,
    check_model,
    check_music,
    check_negative_tags,
    check_text,
    check_upload_url,
    variant_model,
)
from suno_mcp.domain.models import Clip, CoverRequest, MusicRequest, Status, TaskRecord
from suno_mcp.settings import Settings


class Requests:
    """The generate, extend, cover and upload requests this service would send, or why not."""

    settings: Settings
    catalog: Catalog
    sandbox: bool
    # Defined by SunoService: the ledger's row holding a clip, and the clip; the refusal of a
    # caller's id that the ledger does not know and that does not look like an id.
    clip_source: Callable[[str], Awaitable[tuple[TaskRecord, Clip] | None]]
    check_caller_id: Callable[[str, str], Awaitable[None]]

    def generate_request(
        self,
        *,
        description: str | None,
        lyrics: str | None,
        tags: str | None,
        title: str | None,
        instrumental: bool,
        model: str | None,
    ) -> MusicRequest:
        """A new song: inspiration mode (description) or custom mode (lyrics, tags, title)."""
        check_text(description=description, lyrics=lyrics, tags=tags, title=title)
        mv = check_model(model, self.catalog, self.settings.default_model)
        check_music(
            description=description,
            lyrics=lyrics,
            tags=tags,
            title=title,
            instrumental=instrumental,
            model=mv,
            catalog=self.catalog,
        )
        return MusicRequest(
            gpt_description_prompt=description,
            prompt=lyrics or ("" if description else None),
            tags=tags,
            title=title,
            make_instrumental=instrumental,
            mv=mv,
        )

    async def extend_request(
        self,
        *,
        clip_id: str,
        continue_at: float,
        lyrics: str | None,
        tags: str | None,
        title: str | None,
        instrumental: bool,
        model: str | None,
        task_id: str | None,
    ) -> MusicRequest:
        """A continuation of ``clip_id`` from ``continue_at`` seconds.

        What the ledger knows of the clip decides the rest: uploaded audio is continued by the
        model's ``-upload`` variant, the task API follows up on the clip's own task unless
        ``task_id`` names one, and ``continue_at`` must not be past the clip's end.
        """
        check_text(lyrics=lyrics, tags=tags, title=title)
        await self.check_caller_id("clip_id", clip_id)
        if task_id is not None:
            await self.check_caller_id("task_id", task_id)
        default = self.settings.default_model
        source = await self.clip_source(clip_id)
        if source is not None and source[0].kind == "upload":
            # Uploaded audio is continued by the model's -upload variant, whatever was named.
            base, mv = variant_model(model, self.catalog, default, "upload")
        else:
            base = mv = check_model(model, self.catalog, default)
        check_limits(lyrics=lyrics, tags=tags, model=base, catalog=self.catalog)
        follow_up = task_id
        if (
            follow_up is None
            and source is not None
            and source[0].api == "task"
            and self.settings.api == "task"
        ):
            follow_up = source[0].task_id  # the task API takes the source task as a follow-up
        duration = None if source is None else source[1].duration
        if duration is not None and continue_at > duration:
            raise ArgumentError(
                f"continue_at: {continue_at:g} s is past the end of clip {clip_id} ({duration:g} s long). "
                f"Use a value from 0 to {duration:g}."
            )
        return MusicRequest(
            prompt=lyrics or "",
            tags=tags,
            title=title,
            make_instrumental=instrumental,
            mv=mv,
            continue_clip_id=clip_id,
            continue_at=continue_at,
            task_id=follow_up,
        )

    async def cover_request(
        self,
        *,
        clip_id: str,
        tags: str,
        lyrics: str | None,
        title: str | None,
        negative_tags: str | None,
        model: str | None,
    ) -> CoverRequest:
        """A new version of ``clip_id`` in the style of ``tags``.

        The clip must be known here and complete; the cover sings ``lyrics``, else the clip's own
        (from the clip, or the prompt of the fresh generation that made it); an instrumental
        stays one.
        """
        check_text(tags=tags, lyrics=lyrics, title=title, negative_tags=negative_tags)
        base, mv = variant_model(model, self.catalog, self.settings.default_model, "cover")
        check_limits(lyrics=lyrics, tags=tags, model=base, catalog=self.catalog)
        check_negative_tags(negative_tags, model=base, catalog=self.catalog)
        await self.check_caller_id("clip_id", clip_id)
        source = await self.clip_source(clip_id)
        if source is None:
            raise ArgumentError(
                f"clip_id: no clip {clip_id} is known here. Pass a clip id from an earlier result (list_tasks "
                f"shows them), or call get_task_status(task_id='{clip_id}') first to look it up upstream."
            )
        record, clip = source
        if clip.status is Status.FAILED:
            raise ArgumentError(
                f"clip_id: clip {clip_id} failed and has no audio to cover; cover another clip."
            )
        if clip.status is not Status.COMPLETE:
            raise ArgumentError(
                f"clip_id: clip {clip_id} is not complete yet ({clip.status.value}); wait until "
                f"get_task_status(task_id='{record.task_id or record.local_id}', wait_seconds=45) says "
                "complete, then cover it."
            )
        asked = record.request.get("prompt")
        if record.kind != "music" or record.request.get("continue_clip_id") or not isinstance(asked, str):
            asked = None  # only a fresh generation's prompt is the whole song's lyrics
        words = lyrics or clip.lyrics or asked or None
        if words is None:
            if not record.request.get("make_instrumental"):
                raise ArgumentError(
                    f"lyrics: the lyrics of clip {clip_id} are not known here; pass lyrics (the words the cover sings)."
                )
            words = ""  # an instrumental stays one
        return CoverRequest(
            cover_clip_id=clip_id,
            mv=mv,
            prompt=words,
            tags=tags,
            negative_tags=negative_tags or "",
            title=title or clip.title or "",
        )

    def upload_source(self, url: str) -> str:
        """The URL an upload fetches, checked: the sandbox fetches only loopback URLs, the vendor
        can reach only public ones."""
        return check_upload_url(url, allow_private=self.sandbox)
