"""Verriflo's plugins for LocalStack on the host: Lambda as local processes, REST API authorizers
and gateway responses. See localstack/README.md for why each exists."""
