"""The explorer in a real browser: start `streamlit run ui/app.py` on a free loopback port, and
Debian's Chromium driven by Playwright. Shared by tests/test_ui_browser.py and bench/ui_bench.py.

Chromium is Debian's (/usr/bin/chromium, `apt-get install chromium`), never one downloaded by
`playwright install`; .ci/run installs it, and the `test` extra brings Playwright's Python package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
APP = REPO / "ui" / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
MISSING = "Debian's chromium and Playwright's Python package are needed (.ci/run installs them)"
# st.navigation's URL paths: the default page is "/", the others are named after their files.
PAGES = {"Overview": "", "Entity explorer": "entities", "Cypher console": "console",
         "Predictions": "predictions", "Audio": "audio", "Curation": "curation"}


def missing() -> str | None:
    """Why the browser checks cannot run here, or None."""
    if not Path(CHROMIUM).is_file():
        return MISSING
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return MISSING
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




@contextlib.contextmanager
def streamlit_app(env: dict | None = None, wait_s: float = 60.0) -> Iterator[tuple[str, int, subprocess.Popen]]:
    """Run the explorer as `akg ui` would (loopback, headless, no usage statistics); yield (url, port, process).

    Waits (at most `wait_s`) until /_stcore/health answers "ok"; fails with the app's output otherwise.
    The process is terminated at the end.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from ui.cli import streamlit_command

    cmd = streamlit_command("127.0.0.1", port)  # exactly what `akg ui` runs
    home = tempfile.mkdtemp(prefix="akg-ui-home-")  # Streamlit's ~/.streamlit: not the user's
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {}), "HOME": home},
                            stdout=log, stderr=subprocess.STDOUT, text=True)

    def output() -> str:
        log.seek(0)
        return log.read()[-5000:]

    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the explorer exited with status {proc.returncode}:\n{output()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the explorer did not answer on {url}/_stcore/health in {wait_s:.0f} s:\n{output()}")
            time.sleep(0.2)
        yield url, port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def chromium(viewport=(1400, 1000)):
    """A fresh Chromium page (Debian's binary, headless), closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            yield context.new_page()
        finally:
            browser.close()
