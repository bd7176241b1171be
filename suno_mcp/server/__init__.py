"""The MCP face: tools, resources, prompts, the spending question, result shaping, the in-chat
player and the HTTP transport. Speaks MCP; never speaks HTTP to the vendor."""
