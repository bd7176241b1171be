"""What a song, a task and a paid request are, and the rules about them: no I/O, no framework.

Records and requests (``models``), ids, the model catalogue, media types, the spending and
latency rules, tenants, validated tool inputs and the error tree. Every other layer builds on it.
"""
