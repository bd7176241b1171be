"""Speaking to the vendor over HTTP. Returns domain records; knows nothing of MCP.

- ``transport``: authenticated JSON requests, typed errors, the key kept out of every text.
- ``wire``: reading the vendor's answers and building its request bodies; no I/O.
- ``families``: the two endpoint families, the task API and the clip API.
- ``retry``: the retry policy. ``downloads``: saving audio files.
"""
