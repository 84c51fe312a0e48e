"""The queue: how many jobs each owner has waiting and running (GET /v1/queue)."""
