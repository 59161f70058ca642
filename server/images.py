"""A tool result that carries images: the model as structured output (and as text, for clients
that read only text), followed by each image as MCP image content."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from mcp.types import CallToolResult, ContentBlock, ImageContent, TextContent
from pydantic import BaseModel

# The formats our plots and sandbox figures come in, by their first bytes.
SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def tool_result(model: BaseModel, images: Sequence[bytes] | Sequence[Path] = ()) -> CallToolResult:
    """``model`` as structured content plus one image block per image (bytes or a file)."""
    content: list[ContentBlock] = [
        TextContent(type="text", text=model.model_dump_json(exclude_none=True))
    ]
    for image in images:
        data = image.read_bytes() if isinstance(image, Path) else image
        content.append(
            ImageContent(
                type="image",
                data=base64.b64encode(data).decode("ascii"),
                mime_type=media_type(data),
            )
        )
    return CallToolResult(content=content, structured_content=model.model_dump(mode="json"))


def media_type(data: bytes) -> str:
    for signature, media in SIGNATURES.items():
        if data.startswith(signature):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError(f"Not an image this server makes (starts with {data[:8]!r}).")
