"""The prompts: ready-made walks through the tools for common jobs."""

# No `from __future__ import annotations` here: the SDK reads the prompts' annotations at
# registration.

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from suno_mcp.server.lifespan import AppState


def register_prompts(server: MCPServer[AppState]) -> None:
    @server.prompt(
        name="write_a_full_song",
        title="Write a full song",
        description="Walks through a whole song: lyrics, generation, picking a clip, extending, joining, saving.",
    )
    def write_a_full_song(
        idea: Annotated[str, Field(description="What the song is about.")],
        style: Annotated[str, Field(description="Genres and moods, e.g. 'indie folk, warm'.")] = "",
        target_minutes: Annotated[str, Field(description="Rough length wanted, in minutes.")] = "3",
    ) -> str:
        return (
            f"Make a complete song about: {idea}.\n"
            f"Style: {style or 'choose one that fits the idea'}. Target length: about {target_minutes} minutes.\n\n"
            "Steps:\n"
            "1. generate_lyrics(description=<the idea and style>). Show the title and lyrics; adjust if asked.\n"
            "2. generate_music(lyrics=<lyrics>, title=<title>, tags=<style as comma-separated tags>). "
            "It returns two clips; play the previews and let the user pick one.\n"
            "3. If the song should be longer, extend_music(clip_id=<picked clip>, continue_at=<a second near "
            "its end, at a phrase boundary>, lyrics=<the next verses>). Repeat on the newest clip as needed.\n"
            "4. get_complete_song(clip_id=<last extension>) to join the chain into one track.\n"
            "5. get_task_status(task_id, wait_seconds=45) until complete, then download_audio(task_id=...) "
            "and give the user the file path and the audio link.\n"
            "Other routes: to start from a song the user already has, upload_audio(url=<public audio link>) "
            "and extend_music on the clip it returns; to hear a finished clip in another style, "
            "cover_music(clip_id=<clip>, tags=<new style>).\n"
            "Each generation costs credits: confirm with the user before extra rounds."
        )

    @server.prompt(
        name="instrumental_for_use_case",
        title="Instrumental for a use case",
        description="Turns a use case (podcast intro, game loop, video background...) into instrumental settings.",
    )
    def instrumental_for_use_case(
        use_case: Annotated[
            str, Field(description="e.g. 'podcast intro', 'game loop', 'background for a product video'.")
        ],
        mood: Annotated[str, Field(description="Optional mood words.")] = "",
    ) -> str:
        return (
            f"Create instrumental music for: {use_case}. Mood: {mood or 'fit it to the use case'}.\n"
            "Use generate_music with instrumental=true and custom-mode tags (no lyrics needed). "
            "Starting points that suit common uses:\n"
            "- background for a video or app: tags 'ambient, background, subtle'\n"
            "- podcast intro: tags 'intro, professional, upbeat', a short title\n"
            "- game loop or sound bed: tags naming genre and energy, model chirp-v3-5\n"
            "- open-ended video content: use description instead of tags to give Suno creative freedom\n"
            "Pick the tags from the use case and mood, name the title after the use, and keep tags under "
            "200 characters. Then follow the task with get_task_status and save it with download_audio.\n"
            "A track the user already has: upload_audio(url=<public audio link>), then "
            "extend_music(clip_id=<its clip>, continue_at=<a second>, instrumental=true); a finished clip in "
            "another style: cover_music(clip_id=<clip>, tags=<new style>)."
        )
