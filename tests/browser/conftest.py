"""The browser suite's fixtures: the shared published warehouse, one headless Chromium, app
servers."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from dashboards.app import DashboardSettings, create_app

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "goodbooks"
# `make screenshots` points this at docs/screenshots; plain test runs keep the tree clean.
SCREENSHOTS = Path(
    os.environ.get("SHELFWISE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "shelfwise-screenshots"
)
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without network, Chromium stalls on its background services unless these are off. External hosts
# (book covers) fail at once instead of waiting on DNS.
CHROME_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--enable-unsafe-swiftshader",
    "--window-size=1500,1100",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)
WIDTH = 1500


def shelfwise(*args: str, db: Path, timeout: float = 300) -> str:
    """Run the CLI as a user would (``python -m shelfwise.cli -q ARGS --db DB``); its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "shelfwise.cli", "-q", *args, "--db", str(db)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"shelfwise {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


@pytest.fixture(scope="session")
def cli() -> Callable[..., str]:
    """``cli(*args, db=path)``: run a shelfwise command on a warehouse, as a user would."""
    return shelfwise


@pytest.fixture(scope="session")
def warehouse(published_warehouse: Path) -> Path:
    """The shared published warehouse (tests/conftest.py): the bundled sample, every kind fitted,
    t-SNE for mf only, evaluated. Tests that write use a private copy."""
    return published_warehouse


@pytest.fixture(scope="session")
def driver() -> Iterator[webdriver.Chrome]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.fail(
            "Chromium is not installed: run `make browser-deps`"
            " (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # With the driver's path given, selenium skips Selenium Manager (it would try to download one).
    chrome = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


class Server:
    """A dashboard app served from a thread on a free port (werkzeug, threaded like `app.run`)."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.app = create_app(settings)
        self.httpd = make_server("127.0.0.1", 0, self.app.server, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(db_path, **settings)``: start a dashboard; stopped when the test ends."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    servers: list[Server] = []

    def start(db_path: Path, **kwargs: Any) -> Server:
        server = Server(DashboardSettings(db_path=db_path, **kwargs))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Browser:
    """The few things the tests do to a page, with waits; and the checks every test ends with."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base
        # Leave the last test's page first: resizing it would fire its graphs' callbacks at a server
        # that has stopped, and those failures would land in this test's console log.
        self.driver.get("about:blank")
        self.driver.set_window_size(WIDTH, 1100)
        self.driver.get_log("browser")  # drop what earlier tests left
        self.driver.get_log("performance")
        self.network: list[dict] = []

    # -- navigation and waiting
    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.wait_for("#_pages_content > *")

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda _: condition()
            )
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    def wait_for(self, css: str, timeout: float = 20):
        return self.wait(
            lambda: (self.driver.find_elements(By.CSS_SELECTOR, css) or [None])[0], css, timeout
        )

    def wait_text(self, css: str, text: str, timeout: float = 20) -> str:
        def found():
            els = self.driver.find_elements(By.CSS_SELECTOR, css)
            return els[0].text if els and text in els[0].text else None

        return self.wait(found, f"{text!r} in {css}", timeout)

    def texts(self, css: str) -> list[str]:
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText)", css
        )

    def attrs(self, css: str, name: str) -> list[str]:
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(e => e.getAttribute(arguments[1]))",
            css,
            name,
        )

    def idle(self, settle: float = 0.3, timeout: float = 20) -> None:
        """Wait until no Dash component is loading (twice, ``settle`` apart)."""
        script = "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"

        def quiet():
            if self.driver.execute_script(script):
                return False
            time.sleep(settle)
            return self.driver.execute_script(script) == 0

        self.wait(quiet, "Dash to finish updating", timeout)

    # -- controls
    def click(self, css: str) -> None:
        el = self.wait_for(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()

    def radio(self, radio_id: str, label: str) -> None:
        for option in self.driver.find_elements(By.CSS_SELECTOR, f"#{radio_id} label"):
            if option.text.strip() == label:
                option.click()
                return
        raise AssertionError(
            f"no option {label!r} in #{radio_id}: {self.texts(f'#{radio_id} label')}"
        )

    def type_in_dropdown(self, dropdown_id: str, text: str) -> None:
        self.click(f"#{dropdown_id}")
        search = self.wait_for(".dash-dropdown-content input.dash-dropdown-search")
        search.clear()
        search.send_keys(text)

    def options(self) -> list[str]:
        """Labels of the open dropdown's options (not its "No options found" line)."""
        return [
            t
            for t in self.texts(".dash-dropdown-content .dash-dropdown-option")
            if t.strip() != "No options found"
        ]

    def pick(self, dropdown_id: str, text: str, option_contains: str | None = None) -> str:
        """Type ``text`` into a dropdown's search box (if any) and click the first option containing
        ``option_contains`` (default: the text); returns the option's label."""
        if text:
            self.type_in_dropdown(dropdown_id, text)
        else:
            self.click(f"#{dropdown_id}")
        want = (option_contains or text).lower()

        def option():
            try:
                for el in self.driver.find_elements(
                    By.CSS_SELECTOR, ".dash-dropdown-content .dash-dropdown-option"
                ):
                    if want in el.text.lower():
                        return el
            except StaleElementReferenceException:  # the options were replaced while we looked
                pass
            return None

        el = self.wait(option, f"an option containing {want!r} in #{dropdown_id}")
        label = el.text
        el.click()
        self.close_dropdown()
        return label

    def close_dropdown(self) -> None:
        if self.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content"):
            ActionChains(self.driver).send_keys("\ue00c").perform()  # Escape
        self.wait(
            lambda: not self.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-content"),
            "the dropdown to close",
            5,
        )

    # -- figures
    def figure(self, graph_id: str) -> dict:
        """What plotly drew in a dcc.Graph: title, subtitle, trace names, sizes and a
        fingerprint."""
        return self.driver.execute_script(
            """
            const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
            if (!gd || !gd.data) return null;
            // _fullData holds the decoded arrays (data may still carry base64 "bdata").
            const full = gd._fullData || [];
            const arr = v => (v && typeof v.length === 'number') ? Array.from(v) : [];
            return {
                title: (gd.layout.title && gd.layout.title.text) || '',
                subtitle: (gd.layout.title && gd.layout.title.subtitle
                           && gd.layout.title.subtitle.text) || '',
                names: full.map(t => t.name || ''),
                sizes: full.map(t => arr(t.x).length),
                keys: full.map(t => arr(t.customdata).slice(0, 50)),
                fingerprint: full.map(t => arr(t.x).slice(0, 5).concat(arr(t.y).slice(0, 5))),
                colourbar: full.some(t => t.marker && t.marker.showscale),
            };
            """,
            graph_id,
        )

    def wait_figure(
        self, graph_id: str, check: Callable[[dict], bool], what: str, timeout: float = 20
    ) -> dict:
        def ok():
            fig = self.figure(graph_id)
            return fig if fig and check(fig) else None

        return self.wait(ok, f"{what} in #{graph_id} (now {self.figure(graph_id)})", timeout)

    def loneliest_point(self, graph_id: str, trace: int) -> int:
        """The point of ``trace`` farthest (on screen) from every other point of the figure, so a
        click on it cannot land on a neighbour."""
        return self.driver.execute_script(
            """
            const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
            const fl = gd._fullLayout, px = [], own = [];
            gd._fullData.forEach((t, ti) => Array.from(t.x || []).forEach((x, i) => {
                const p = [fl.xaxis.l2p(x), fl.yaxis.l2p(t.y[i])];
                px.push(p);
                if (ti === arguments[1]) own.push([i, p]);
            }));
            let best = 0, bestGap = -1;
            for (const [i, p] of own) {
                let gap = Infinity;
                for (const q of px) {
                    const d = Math.hypot(p[0] - q[0], p[1] - q[1]);
                    if (d > 0 && d < gap) gap = d;
                }
                if (gap > bestGap) { bestGap = gap; best = i; }
            }
            return best;
            """,
            graph_id,
            trace,
        )

    def click_point(self, graph_id: str, trace: int, point: int = 0) -> None:
        """A real mouse click on one point of a (WebGL) scatter: hover it, then click."""
        x, y = self.driver.execute_script(
            """
            const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
            gd.scrollIntoView({block: 'center'});
            const fl = gd._fullLayout, t = gd._fullData[arguments[1]];
            const box = gd.getBoundingClientRect();
            return [box.left + fl._size.l + fl.xaxis.l2p(t.x[arguments[2]]),
                    box.top + fl._size.t + fl.yaxis.l2p(t.y[arguments[2]])];
            """,
            graph_id,
            trace,
            point,
        )
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        actions = ActionBuilder(self.driver)
        actions.pointer_action.move_to_location(int(x) - 3, int(y))
        actions.pointer_action.pause(0.2)
        actions.pointer_action.move_to_location(int(x), int(y))
        actions.pointer_action.pause(0.4)
        actions.pointer_action.click()
        actions.perform()

    # -- checks
    def console_errors(self) -> list[dict]:
        """SEVERE browser log entries, except failed loads of other hosts (book covers, no network
        here)."""
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            if entry.get("source") == "network" and not entry["message"].startswith(self.base):
                continue
            errors.append(entry)
        return errors

    def assert_no_console_errors(self) -> None:
        errors = self.console_errors()
        assert not errors, "browser console errors:\n" + "\n".join(e["message"] for e in errors)

    def responses(self) -> list[tuple[str, int | None]]:
        """(url, status) of every request to the dashboard since the last call; None = failed."""
        found = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.responseReceived":
                found.append((params["response"]["url"], params["response"]["status"]))
            elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
                found.append((params.get("requestId", "?"), None))
        return [
            (url, status) for url, status in found if url.startswith(self.base) or status is None
        ]

    def screenshot(self, name: str) -> Path:
        """The whole page from its top, at the suite's width, into SCREENSHOTS/<name>.png."""
        self.idle()
        self.driver.execute_script("window.scrollTo(0, 0)")
        height = min(
            self.driver.execute_script("return document.documentElement.scrollHeight"), 4000
        )
        self.driver.set_window_size(WIDTH, height)
        chrome = height - self.driver.execute_script(
            "return window.innerHeight"
        )  # window minus viewport
        if chrome > 0:
            self.driver.set_window_size(WIDTH, height + chrome)
        time.sleep(1.0)  # plotly redraws responsive figures after a resize
        self.idle()
        self.driver.execute_script("window.scrollTo(0, 0)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(WIDTH, 1100)
        return path


@pytest.fixture
def dashboard(
    driver: webdriver.Chrome, serve: Callable[..., Server]
) -> Iterator[Callable[..., Browser]]:
    """``dashboard(db_path, **settings)``: the shared Chromium pointed at a fresh dashboard over
    ``db_path``."""
    yield lambda db_path, **kwargs: Browser(driver, serve(db_path, **kwargs).url)
    # Torn down before `serve` stops the servers: no page is left calling a server that is gone.
    driver.get("about:blank")


@pytest.fixture
def browser(dashboard: Callable[..., Browser], warehouse: Path) -> Browser:
    """The shared Chromium pointed at a fresh dashboard over the session warehouse."""
    return dashboard(warehouse)


@pytest.fixture
def private_warehouse(warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the session warehouse and its read snapshot, for a test that writes to it."""
    dest = tmp_path / warehouse.name
    shutil.copyfile(warehouse, dest)
    shutil.copyfile(f"{warehouse}.read", f"{dest}.read")
    return dest
