"""The MCP App views in a real browser, during a real training job.

Headless Chromium (Debian's, driven by Playwright: no browser download) loads tests/ui/host.html,
a small MCP Apps host written against the spec. It renders each view in a sandboxed iframe under
the spec's default CSP and relays the view's tools/call to the real server (a stdio subprocess)
through an MCP client that negotiated MCP Apps. Every request the page makes is recorded: none
may leave the machine. Screenshots of both views are kept in MLTRAINER_UI_ARTIFACTS (default:
the test's tmp folder); MLTRAINER_UPDATE_SCREENSHOTS=1 also refreshes the README's copies in
tests/ui/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import connect, payload, write_classification_csv
from profiling_files import warnings_table

from mltrainer.state.settings import Settings

HOST_PAGE = Path(__file__).parent / "ui" / "host.html"
SCREENSHOTS = Path(__file__).parent / "ui" / "screenshots"
CHROMIUM = os.environ.get("MLTRAINER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
APPS = {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}
# Flags of the brief: no background traffic of Chromium's own (updates, sync, first-run pings).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEP_MS = 180_000  # generous: the machine is shared


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the Python package 'playwright' is not installed (run .ci/browser-setup.sh)"
    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed at {CHROMIUM} (run .ci/browser-setup.sh)"
    return None


pytestmark = [pytest.mark.anyio, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(autouse=True)
def browser_installed() -> None:
    """Skip with the reason when Chromium or Playwright is missing; fail in CI, which sets
    MLTRAINER_REQUIRE_EXTRAS=1 after .ci/browser-setup.sh."""
    missing = _missing()
    if missing and os.environ.get("MLTRAINER_REQUIRE_EXTRAS") == "1":
        pytest.fail(f"MLTRAINER_REQUIRE_EXTRAS=1 but {missing}")
    if missing:
        pytest.skip(missing)


@dataclass
class Browser:
    """A page holding the test host, relaying the view's calls to ``client``."""

    page: Any
    client: Any
    tools: list[dict[str, Any]]
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    relayed: list[str] = field(default_factory=list)
    confirm: bool = True

    async def render(self, uri: str, tool: str, arguments: dict[str, Any]) -> Any:
        """Render the view at ``uri`` for a call of ``tool``; returns the view's frame."""
        html = (await self.client.read_resource(uri)).contents[0].text
        options = {"tools": self.tools, "toolName": tool, "toolInput": arguments}
        await self.page.evaluate("([html, options]) => host.render(html, options)", [html, options])
        return await self.view()

    async def view(self) -> Any:
        frame = await (await self.page.query_selector("iframe")).content_frame()
        assert frame is not None and frame.url == "about:srcdoc", frame
        return frame

    async def deliver(self, result: Any) -> None:
        await self.page.evaluate("(r) => host.deliverResult(r)", dump(result))

    async def host_calls(self) -> list[dict[str, Any]]:
        return list(await self.page.evaluate("() => host.toolCalls"))

    async def screenshot(self, name: str) -> Path:
        folder = Path(os.environ.get("MLTRAINER_UI_ARTIFACTS") or tempfile.mkdtemp())
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        # The whole view, from its top: the frame has grown to the height the view reported.
        view = await self.view()
        await view.evaluate("() => window.scrollTo(0, 0)")
        height = await view.evaluate(
            "() => document.documentElement.getBoundingClientRect().height"
        )
        await self.page.wait_for_function(
            f"() => host.view.getBoundingClientRect().height >= {int(height)}", timeout=STEP_MS
        )
        # A viewport that holds it all: Chromium paints only the visible part of a frame.
        await self.page.set_viewport_size({"width": 900, "height": int(height) + 40})
        await self.page.evaluate("() => window.scrollTo(0, 0)")
        await self.page.locator("iframe").screenshot(path=str(path))
        if os.environ.get("MLTRAINER_UPDATE_SCREENSHOTS") == "1":
            from PIL import Image

            SCREENSHOTS.mkdir(exist_ok=True)
            # The README's copy, small: a 256-colour palette is plenty for a page of text.
            image = Image.open(path).convert("RGB").quantize(colors=256)
            image.save(SCREENSHOTS / path.name, optimize=True)
        return path


def dump(result: Any) -> dict[str, Any]:
    return dict(result.model_dump(mode="json", by_alias=True, exclude_none=True))


def local(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "about", "blob") or parts.hostname in (
        "127.0.0.1",
        "localhost",
    )


@asynccontextmanager
async def browser_host(settings: Settings, tmp_path: Path) -> AsyncIterator[Browser]:
    from mcp.client.extension import advertise
    from playwright.async_api import async_playwright

    extensions = [advertise(name, value) for name, value in APPS.items()]
    async with (
        connect("stdio", settings, extensions=extensions) as client,
        async_playwright() as playwright,
    ):
        tools = [dump(tool) for tool in (await client.list_tools()).tools]
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 900, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            browser = Browser(page=page, client=client, tools=tools)
            context.on("request", lambda request: browser.requests.append(request.url))

            async def refuse_remote(route: Any) -> None:
                if local(route.request.url):
                    await route.continue_()
                else:
                    await route.abort()

            await context.route("**/*", refuse_remote)

            async def on_dialog(dialog: Any) -> None:
                browser.dialogs.append(dialog.message)
                await (dialog.accept() if browser.confirm else dialog.dismiss())

            page.on("dialog", on_dialog)

            async def relay(method: str, params_json: str) -> str:
                params = json.loads(params_json)
                browser.relayed.append(params.get("name") or params.get("uri"))
                if method == "tools/call":
                    result = await client.call_tool(params["name"], params.get("arguments") or {})
                else:
                    result = await client.read_resource(params["uri"])
                return json.dumps(dump(result))

            await page.expose_function("mcpRelay", relay)
            await page.goto(HOST_PAGE.as_uri())
            yield browser
            remote = [url for url in browser.requests if not local(url)]
            assert remote == [], f"the page made requests that leave the machine: {remote}"
        finally:
            await context.close()


def stage(name: str) -> str:
    """A JavaScript expression: the state the dashboard shows for a stage."""
    return f"document.querySelector('li[data-stage={name}]')?.dataset.status"


def count(selector: str) -> str:
    return f"() => document.querySelectorAll({json.dumps(selector)}).length"


async def test_the_job_dashboard_follows_a_real_training_job_and_cancels_another(
    settings: Settings, tmp_path: Path
) -> None:
    data = write_classification_csv(tmp_path / "churn.csv", rows=600)
    async with browser_host(settings, tmp_path) as browser:
        train = {"dataset": str(data), "target": "label", "time_budget_s": 15, "wait_s": 1}
        view = await browser.render("ui://mltrainer/job-dashboard.html", "train_model", train)
        started = payload(result := await browser.client.call_tool("train_model", train))
        assert started["status"] in ("queued", "running")
        await browser.deliver(result)

        # The stages advance: load and profile done while train runs, and the leaderboard
        # fills while it does.
        await view.wait_for_function(
            f"() => {stage('train')} === 'running' && {stage('load')} === 'succeeded'"
            f" && {stage('profile')} === 'succeeded'",
            timeout=STEP_MS,
        )
        await view.wait_for_function(
            f"() => ({count('#leaderboard tbody tr')})() >= 1"
            " && document.getElementById('status').textContent === 'running'",
            timeout=STEP_MS,
        )
        running_rows = await view.evaluate(count("#leaderboard tbody tr"))
        assert int(await view.evaluate(count("#events li"))) >= 3

        # To the end: held-out metrics, decisions, plots that render, and polling stops.
        await view.wait_for_function(
            "() => document.body.dataset.polling === 'ended'", timeout=STEP_MS
        )
        assert await view.inner_text("#status") == "succeeded"
        assert await view.evaluate(count("#leaderboard tbody tr")) >= running_rows
        assert await view.evaluate(count("#metrics .metric")) >= 1
        assert await view.evaluate(count("#decisions tbody tr")) >= 1
        assert await view.evaluate(count("li[data-stage][data-status=succeeded]")) == 3
        await view.wait_for_function(
            "() => [...document.querySelectorAll('#plots img')].length >= 1 && "
            "[...document.querySelectorAll('#plots img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=STEP_MS,
        )
        assert float(await view.get_attribute("#progress-bar", "data-value") or 0) == 1.0
        polls = browser.relayed.count("job_status")

        # Predict from the view, with the host's confirmation, on the training file.
        assert await view.input_value("#predict-dataset") == str(data)
        await view.click("#predict")
        await view.wait_for_function(count("#predict-preview tbody tr") + " >= 1", timeout=STEP_MS)
        assert browser.dialogs and "predict" in browser.dialogs[-1]
        assert browser.relayed.count("job_status") == polls  # nothing polls once it ended
        await browser.screenshot("job-dashboard")

        # A second job, cancelled from the view: declined first, then confirmed.
        second = {**train, "time_budget_s": 120, "wait_s": 0}
        view = await browser.render("ui://mltrainer/job-dashboard.html", "train_model", second)
        job = payload(result := await browser.client.call_tool("train_model", second))
        await browser.deliver(result)
        await view.wait_for_function(
            "() => !document.getElementById('cancel').disabled", timeout=STEP_MS
        )
        browser.confirm = False
        await view.click("#cancel")
        await view.wait_for_function(
            "() => document.getElementById('notice').textContent.includes('declined')",
            timeout=STEP_MS,
        )
        still = payload(await browser.client.call_tool("job_status", {"job_id": job["job_id"]}))
        assert still["status"] in ("queued", "running")
        browser.confirm = True
        await view.click("#cancel")
        await view.wait_for_function(
            "() => document.getElementById('status').textContent === 'cancelled'"
            " && document.body.dataset.polling === 'ended'",
            timeout=STEP_MS,
        )
        ended = payload(await browser.client.call_tool("job_status", {"job_id": job["job_id"]}))
        assert ended["status"] == "cancelled"
        outcomes = [(c["name"], c["outcome"]) for c in await browser.host_calls()]
        assert ("cancel_job", "declined") in outcomes and ("cancel_job", "ok") in outcomes
        assert {name for name, _ in outcomes} <= {
            "job_timeline",
            "job_status",
            "predict",
            "cancel_job",
        }


async def test_the_profile_view_shows_columns_warnings_target_and_plots(
    settings: Settings, tmp_path: Path
) -> None:
    data = warnings_table(tmp_path / "customers.csv")
    async with browser_host(settings, tmp_path) as browser:
        arguments = {"dataset": str(data), "target": "churned"}
        view = await browser.render("ui://mltrainer/profile.html", "profile_dataset", arguments)
        await browser.deliver(await browser.client.call_tool("profile_dataset", arguments))
        await view.wait_for_function(count("#columns tbody tr") + " >= 10", timeout=STEP_MS)
        flags = {
            row["column"]: row["flag"]
            for row in await view.eval_on_selector_all(
                "#columns tbody tr[data-flag]",
                "rows => rows.map(r => ({column: r.dataset.column, flag: r.dataset.flag}))",
            )
        }
        assert flags["cancel_reason"] == "leakage" and flags["churned_score"] == "leakage"
        assert flags["customer_id"] == "identifier" and flags["country"] == "constant"
        assert "binary" in await view.inner_text("#target")
        assert await view.evaluate(count("#warnings li[data-kind=leakage]")) == 2
        await view.wait_for_function(
            "() => [...document.querySelectorAll('#plots img')].length === 3 && "
            "[...document.querySelectorAll('#plots img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=STEP_MS,
        )
        await browser.screenshot("dataset-profile")
        assert await browser.host_calls() == []  # the profile view calls nothing
