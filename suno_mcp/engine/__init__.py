"""Following tasks to the end: the poller (``poller``), its schedule (``schedule``), the limiters that
pace its requests (``limiter``), what it needs from the service (``host``) and the coordination of
replicas (``coordination``, ``coordination_pg``)."""
