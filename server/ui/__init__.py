"""MCP App views (the MCP Apps extension, ``io.modelcontextprotocol/ui``): self-contained HTML
pages served as ``ui://`` resources, which hosts that support MCP Apps render beside the
results of the tools bound to them.

- ``dashboard.html`` (``DASHBOARD_URI``), bound to ``train_model`` and ``job_status``: a job's
  stages and timings, progress and latest events, the leaderboard as it grows, the planner's
  decisions, the held-out metrics, the plots, and buttons for ``cancel_job`` and ``predict``.
- ``profile.html`` (``PROFILE_URI``), bound to ``profile_dataset``: the column table, the
  warnings, the target summary and the plots.

Each file holds its own CSS and JavaScript and loads nothing from the network (hosts apply the
spec's restrictive default CSP, ``connect-src 'none'``): everything reaches a view through the
host bridge (postMessage JSON-RPC). server/apps.py wires them into the server.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

DASHBOARD_URI = "ui://mltrainer/job-dashboard.html"
PROFILE_URI = "ui://mltrainer/profile.html"
VIEWS = {DASHBOARD_URI: "dashboard.html", PROFILE_URI: "profile.html"}


def ui_meta(resource_uri: str) -> dict[str, Any]:
    """The ``_meta`` that binds a model-visible tool to a view (what ``Apps.tool`` stamps)."""
    assert resource_uri in VIEWS, resource_uri
    return {"ui": {"resourceUri": resource_uri}}


# The views share their bridge and style; each is served with both inlined, as one file.
INLINED = {"/*@common.css*/": "common.css", "//@common.js": "common.js"}


def view_html(resource_uri: str) -> str:
    """The HTML of a view, from the installed package's data, with the shared parts inlined."""
    folder = files(__package__)
    html = folder.joinpath(VIEWS[resource_uri]).read_text(encoding="utf-8")
    for marker, name in INLINED.items():
        assert marker in html, (name, resource_uri)
        html = html.replace(marker, folder.joinpath(name).read_text(encoding="utf-8"))
    return html
