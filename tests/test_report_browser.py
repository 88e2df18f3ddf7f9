"""The HTML report in a real headless Chromium: no console errors, every image decodes,
and the page requests nothing but itself and its data: URIs.

Chromium is driven through the DevTools protocol over a tiny stdlib WebSocket client
(no extra Python package). Skipped, with the reason printed, where Debian's ``chromium``
is not installed (``apt-get install chromium``); a failure instead under
STAGE1_REQUIRE_COMPONENTS=1, as in CI (tests/components.py).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from components import unavailable
from report_fixtures import collect_argv, experiment, report_argv, write_run, write_smoke_runs

from workflow_scripts import collect, report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
)
TIMEOUT_S = 60.0


class WebSocket:
    """Just enough RFC 6455 for DevTools: masked text frames out, text frames in."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            response += chunk
        if b" 101 " not in response.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"WebSocket handshake refused: {response!r}")

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            data += chunk
        return data

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            first, second = self._exact(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._exact(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._exact(8))
            payload = self._exact(size)
            if opcode == 0x9:  # ping
                self._frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            message += payload
            if first & 0x80:
                return message.decode()

    def close(self) -> None:
        self.sock.close()


class DevTools:
    """One browser connection; commands on a flattened page session, events collected."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            event = json.loads(self.ws.recv())
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(method)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    if CHROMIUM is None:
        unavailable("chromium", "chromium is not installed (Debian: apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit code {process.poll()})")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        ws = WebSocket("127.0.0.1", int(port), path)
        tools = DevTools(ws)
        yield tools
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            tools.call("Browser.close")
        ws.close()
    finally:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load_page(tools: DevTools, html: Path) -> dict[str, Any]:
    """Open ``html`` in a new tab; return console errors, images and requested URLs."""
    target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable", session=session)
    tools.events.clear()
    tools.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
    tools.wait_for("Page.loadEventFired")
    images = tools.call(
        "Runtime.evaluate",
        {
            "expression": (
                "Promise.all(Array.from(document.images).map(img => img.decode().then("
                "() => ({alt: img.alt, ok: img.complete && img.naturalWidth > 0, w: img.naturalWidth}),"
                "() => ({alt: img.alt, ok: false, w: img.naturalWidth}))))"
            ),
            "awaitPromise": True,
            "returnByValue": True,
        },
        session=session,
    )["result"]["value"]
    tools.call("Runtime.evaluate", {"expression": "1"}, session=session)  # flush late events
    ours = [e for e in tools.events if e.get("sessionId") == session]
    errors = [
        e["params"]
        for e in ours
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    requests = [e["params"]["request"]["url"] for e in ours if e.get("method") == "Network.requestWillBeSent"]
    tools.call("Target.closeTarget", {"targetId": target})
    return {"errors": errors, "images": images, "requests": requests}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-report")
    write_smoke_runs(root, {"frozen_all": (0.30, 0.32), "freeze": (0.40, 0.43), "nofreeze": (0.41, 0.42)})
    write_run(root, "baseline", 0, 0.11)
    write_run(root, "baseline", 1, None)  # a crashed run: the report must still be clean
    assert collect.main(collect_argv(root)) == 0
    assert report.main(report_argv(root, experiment())) == 0
    return root / "results" / "report.html"


def test_report_opens_cleanly_in_chromium(browser: DevTools, rendered: Path) -> None:
    page = load_page(browser, rendered)
    assert page["errors"] == [], f"console errors: {page['errors']}"
    # budget curve, test periods, learning curves, paired deltas, final comparison, compute
    assert len(page["images"]) == 6
    assert all(image["ok"] and image["w"] > 100 for image in page["images"]), page["images"]
    remote = [url for url in page["requests"] if not url.startswith(("file://", "data:"))]
    assert remote == [], f"the report requested remote assets: {remote}"


def test_broken_image_would_be_caught(browser: DevTools, tmp_path: Path) -> None:
    """The check itself works: an undecodable image and a script error are both reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>x</title></head><body>'
        '<img alt="bad" src="data:image/png;base64,AAAA"><script>console.error("boom")</script></body></html>'
    )
    result = load_page(browser, page)
    assert [image["ok"] for image in result["images"]] == [False]
    assert any("boom" in json.dumps(error) for error in result["errors"])
