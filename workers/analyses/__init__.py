"""Analyses of a job, run by a worker on its kept weights after it trained (see `run.py`): one module each."""
