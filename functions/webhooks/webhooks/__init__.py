"""Webhook endpoint management: endpoints, secrets, delivery log, replay, test events."""
