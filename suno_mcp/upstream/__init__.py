"""Speaking to the vendor over HTTP: the transport, reading its answers, the two API families
(task and clip), the retry policy and downloads. Returns domain records; knows nothing of MCP."""
