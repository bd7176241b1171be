"""The resources: the model catalog, the task ledger (newest tasks and one task), usage and
budget, and the latency learned from this upstream. (The in-chat player's resource is
:mod:`suno_mcp.server.player`'s.)

Resources get no Context: they read the service from the server's holder, which the lifespan
fills, and :class:`suno_mcp.server.app.SunoServer` sets the caller they act for.
"""

# No `from __future__ import annotations` here: the SDK reads the resources' annotations at
# registration.

import json
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from suno_mcp.domain.catalog import Catalog
from suno_mcp.domain.inputs import ArgumentError
from suno_mcp.server.lifespan import AppState, LazyService, resource_service
from suno_mcp.settings import Settings

if TYPE_CHECKING:
    from suno_mcp.service.core import SunoService


def register_resources(server: MCPServer[AppState], settings: Settings, holder: list[LazyService]) -> None:
    """Register the resources; they read the service from ``holder``, which the lifespan fills."""
    catalog = Catalog.with_extra(settings.extra_models)

    async def service() -> "SunoService":
        return await resource_service(holder)

    @server.resource(
        "suno://models",
        name="models",
        title="Suno models",
        description=(
            "The models the `model` argument accepts, their text limits, what each is good for, and "
            "which can cover (cover_music) or continue uploaded audio (extend_music after upload_audio)."
        ),
        mime_type="application/json",
    )
    def models_resource() -> str:
        return json.dumps(
            {
                "default": settings.default_model,
                "models": [
                    {
                        "name": m.name,
                        "version": m.version,
                        "lyrics_max_chars": m.lyrics_max,
                        "tags_max_chars": m.tags_max,
                        "good_for": m.good_for,
                        "documented_by_vendor": m.documented,
                        **({"cover_model": m.cover_variant} if m.cover_variant else {}),
                        **({"upload_model": m.upload_variant} if m.upload_variant else {}),
                    }
                    for m in catalog.models
                ],
            },
            indent=1,
        )

    @server.resource(
        "suno://tasks",
        name="tasks",
        title="Task ledger",
        description="The newest 50 tasks in the local ledger (JSON).",
        mime_type="application/json",
    )
    async def tasks_resource() -> str:
        # The result models are imported on first use, with the tools (see server.listing).
        from suno_mcp.server.results import TaskList
        from suno_mcp.server.shaping import task_summary

        records = await (await service()).list_tasks(limit=50)
        return TaskList(tasks=[task_summary(r) for r in records], count=len(records)).model_dump_json(
            indent=1
        )

    @server.resource(
        "suno://usage",
        name="usage",
        title="Usage and budget",
        description="Paid requests in the last hour, day and 30 days, and the budget (JSON).",
        mime_type="application/json",
    )
    async def usage_resource() -> str:
        from suno_mcp.server.shaping import read_usage

        return (await read_usage(await service())).model_dump_json(indent=1)

    _register_task_resource(server, holder)
    _register_latency_resource(server, holder)


def _register_task_resource(server: MCPServer[AppState], holder: list[LazyService]) -> None:
    @server.resource(
        "suno://tasks/{task_id}",
        name="task",
        title="One task",
        description="One task from the ledger with its clips, URLs and saved files (JSON).",
        mime_type="application/json",
        # A task id is not a file path: an id the upstream gave us may hold '/' or '..' and is
        # still read. The service refuses an unknown id that does not look like one.
        security=ResourceSecurity(exempt_params={"task_id"}),
    )
    async def task_resource(task_id: str) -> str:
        from suno_mcp.server.results import task_result

        try:
            record = await (await resource_service(holder)).record(task_id)
        except ArgumentError as err:
            raise ResourceNotFoundError(str(err)) from err
        if record is None:
            raise ResourceNotFoundError(f"no task {task_id} in the ledger")
        # The submit's answer as received goes with it: what we could not read, a person can.
        return json.dumps(
            {**task_result(record).model_dump(mode="json"), "raw_answer": record.raw_answer}, indent=1
        )


def _register_latency_resource(server: MCPServer[AppState], holder: list[LazyService]) -> None:
    @server.resource(
        "suno://latency",
        name="latency",
        title="How long this upstream takes",
        description=(
            "Learned from finished tasks, per API, kind and model: the usual seconds from submit to the first "
            "playable audio and to the final file, and the window the poller watches most closely (JSON)."
        ),
        mime_type="application/json",
    )
    async def latency_resource() -> str:
        service = await resource_service(holder)
        return json.dumps(
            {"learned": service.latency(), "usual_final_s": round(service.typical_final_s(), 1)}, indent=1
        )
