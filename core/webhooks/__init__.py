"""Webhooks: who is sent which events (repository), the events written beside the change they report
(outbox), where a delivery may go (targets) and how it is signed (signing)."""
