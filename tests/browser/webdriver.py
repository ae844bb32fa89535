"""A small asynchronous W3C WebDriver client over httpx, driving Debian's chromedriver and chromium.

No browser download and no extra Python package: /usr/bin/chromedriver and /usr/bin/chromium
(apt-get install chromium chromium-driver) are all it needs.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(AssertionError):
    pass


class Browser:
    """One chromedriver process and one headless chromium session with its own profile and download folder."""

    def __init__(self, downloads: Path) -> None:
        self.downloads = downloads
        self.profile = tempfile.mkdtemp(prefix="yibao-chromium-")
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.http: httpx.AsyncClient | None = None
        self.session: str | None = None

    async def __aenter__(self) -> Browser:
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        deadline = time.monotonic() + 20
        while True:
            try:
                if (await self.http.get("/status")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise WebDriverError("chromedriver did not start")
            await asyncio.sleep(0.1)
        options = {
            "binary": CHROMIUM,
            "args": [*FLAGS, f"--user-data-dir={self.profile}"],
            "prefs": {"download.default_directory": str(self.downloads), "download.prompt_for_download": False},
        }
        created = await self._call(
            "POST",
            "/session",
            {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}},
            session=False,
        )
        self.session = created["sessionId"]
        await self._call(
            "POST",
            "/goog/cdp/execute",
            {
                "cmd": "Browser.setDownloadBehavior",
                "params": {"behavior": "allow", "downloadPath": str(self.downloads)},
            },
        )
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            if self.session:
                await self._call("DELETE", "")
        except Exception:
            pass
        if self.http:
            await self.http.aclose()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _call(self, method: str, path: str, body: dict | None = None, *, session: bool = True):
        url = (f"/session/{self.session}" if session else "") + path
        response = await self.http.request(method, url, json=body)
        value = response.json().get("value")
        if response.status_code >= 400:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    async def get(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def find(self, css: str) -> str | None:
        response = await self.http.post(
            f"/session/{self.session}/element", json={"using": "css selector", "value": css}
        )
        if response.status_code == 404:
            return None
        value = response.json()["value"]
        if response.status_code >= 400:
            raise WebDriverError(f"find {css}: {value}")
        return value[ELEMENT]

    async def wait_for(self, css: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            element = await self.find(css)
            if element:
                return element
            await asyncio.sleep(0.1)
        raise WebDriverError(f"{css} did not appear within {timeout} s")

    async def type(self, element: str, text: str) -> None:
        await self._call("POST", f"/element/{element}/value", {"text": text})

    async def click(self, element: str) -> None:
        await self._call("POST", f"/element/{element}/click", {})

    async def text(self, element: str) -> str:
        return await self._call("GET", f"/element/{element}/text")

    async def script(self, source: str, *args):
        return await self._call("POST", "/execute/sync", {"script": source, "args": list(args)})

    async def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(await self._call("GET", "/screenshot")))
