"""The MCP face: speaks MCP; never speaks HTTP to the vendor (it asks the service).

    app        SunoServer and build_server: the server put together
    lifespan   the service, opened on first use, and how a call or a resource read reaches it
    tools      the ten tools          resources / prompts   the resources and the prompts
    calls      running a service call; domain errors become tool errors
    confirm    the spending question (elicitation, or InputRequiredResult from 2026-07-28)
    shaping    CallToolResults: text, links, audio, progress notifications
    results    the output models      texts   what a model reads   schema   compact JSON schemas
    player     the in-chat player     http    the streamable HTTP transport

Nothing is re-exported here (import build_server from app): a module of its own, such as http for
the cli's is_loopback, must stay importable without the rest of the server.
"""
