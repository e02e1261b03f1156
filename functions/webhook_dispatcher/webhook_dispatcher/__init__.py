"""Webhook delivery: SQS consumer that signs and sends domain events to the orgs' endpoints."""
