"""Tenants: API keys (only their hashes are stored), the principal a request acts for, per-owner limits."""
