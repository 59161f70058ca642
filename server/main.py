"""A module-level server object, for tools that import one: ``mcp dev server/main.py``."""

from mltrainer.server.app import create_server

mcp = create_server()
