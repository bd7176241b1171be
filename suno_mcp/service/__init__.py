"""The use cases (submit, follow, download, spend) and the wiring that opens them against the
vendor or the sandbox. The MCP layer asks the service, never its parts."""
