"""The MCP surface: tool, resource and prompt registration, transports, progress glue."""
