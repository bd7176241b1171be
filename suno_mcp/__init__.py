"""suno-mcp: make music with Suno (through gptproto) from any MCP client."""

__version__ = "0.1.0"
