"""The tool list as shipped: tools/list answered before the tools are registered.

A client's first two requests are initialize and tools/list, and a stdio client starts a server
for every conversation. Registering the ten tools with the SDK builds a pydantic model of each
tool's arguments and its result and their JSON schemas, compacting the input schemas for the
first list takes more, and the modules those models come from have to be imported first: together
about two thirds of what suno-mcp added to a bare SDK server's cold start, for a list that is the
same every time. So the list the tools make with the default settings is shipped in the package
(``tools.json``), and a server whose settings and libraries would make that same list answers
tools/list from it; :class:`suno_mcp.server.app.SunoServer` registers the tools themselves when
something needs them (a call, a tool added or removed).

What the list depends on is written down, not guessed: the tools see only a :class:`ToolShape`
(the three settings their schemas and descriptions quote), and the file records the versions of
the libraries that generate the schemas; anything else and the list is made live, as before. A
test holds the file equal to what the tools make; after changing a tool, write it again with
``python -m suno_mcp.server.listing``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import mcp_types as types
import pydantic

from suno_mcp.settings import Settings, load_settings

LISTING_FILE = "tools.json"
# The distributions whose code turns our tool functions into the listed schemas.
SCHEMA_MAKERS = ("mcp", "mcp-types")


@dataclass(frozen=True)
class ToolShape:
    """The settings the tool list quotes: the waits' default and bound, and how long a request is
    reused (in the descriptions). The tools are registered from this alone, so a server whose
    shape matches the shipped one lists exactly what registering them would."""

    default_wait: float
    max_wait: float
    duplicate_window: float

    @classmethod
    def of(cls, settings: Settings) -> ToolShape:
        return cls(
            default_wait=settings.default_wait,
            max_wait=settings.max_wait,
            duplicate_window=settings.duplicate_window,
        )


def made_with() -> dict[str, str]:
    """The versions of the libraries that make the schemas, as recorded in the listing file."""
    versions = {name: metadata.version(name) for name in SCHEMA_MAKERS}
    versions["pydantic"] = pydantic.VERSION
    return versions


def listing_document(shape: ToolShape, tools: list[types.Tool]) -> dict[str, Any]:
    """What the listing file holds: the tools as listed, and what they were made from."""
    return {
        "shape": asdict(shape),
        "made_with": made_with(),
        # exclude_unset: read back, each tool has the same fields set, so it goes out the same.
        "tools": [tool.model_dump(mode="json", by_alias=True, exclude_unset=True) for tool in tools],
    }


def read_listing() -> dict[str, Any] | None:
    """The listing file shipped in the package, or None if it cannot be read."""
    try:
        text = resources.files(__package__).joinpath(LISTING_FILE).read_text(encoding="utf-8")
        document: dict[str, Any] = json.loads(text)
    except (OSError, ValueError):
        return None
    return document


def listed_tools(document: dict[str, Any] | None, shape: ToolShape) -> list[types.Tool] | None:
    """The tools of a listing ``document`` if they are what tools of ``shape`` would list with
    the libraries installed here; None otherwise (the tools are then registered and listed live)."""
    if document is None or document.get("shape") != asdict(shape) or document.get("made_with") != made_with():
        return None
    return [types.Tool.model_validate(tool) for tool in document["tools"]]


def shipped_tools(shape: ToolShape) -> list[types.Tool] | None:
    """:func:`listed_tools` of the shipped file: read once, when the server is built (like the
    player's page), never on the event loop."""
    return listed_tools(read_listing(), shape)


async def live_listing(shape: ToolShape) -> dict[str, Any]:
    """The listing document of tools registered now with ``shape``, on a server of their own."""
    # Imported here: the server module imports this one.
    from suno_mcp.server.app import SunoServer
    from suno_mcp.server.tools import register_tools

    server = SunoServer(name="suno-mcp")
    register_tools(server, shape)
    return listing_document(shape, await server.list_tools())


def default_shape() -> ToolShape:
    """The shape of a server started with no settings in its environment."""
    return ToolShape.of(load_settings(environ={}))


def main() -> None:
    """Write the listing file of the default settings next to this module."""
    import anyio

    document = anyio.run(live_listing, default_shape())
    path = Path(__file__).with_name(LISTING_FILE)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(document['tools'])} tools to {path}")


if __name__ == "__main__":
    main()
