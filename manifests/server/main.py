"""Entry point of the MCPB bundle: the gptproto-suno-mcp package, installed from PyPI by the host's uv."""

from suno_mcp.cli import main

if __name__ == "__main__":
    main()
