"""steadyfit: training as a service. `steadyfit.Client` talks to a running server."""

from steadyfit.client import ApiError, Client, Event

__all__ = ["ApiError", "Client", "Event"]
