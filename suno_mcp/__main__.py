from suno_mcp.cli import main

main()
