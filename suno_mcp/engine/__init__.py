"""Following tasks to the end: the poller, its rate limiter and the coordination of replicas."""
