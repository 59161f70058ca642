"""Durable jobs: long work runs in a worker process; its state lives in SQLite."""
