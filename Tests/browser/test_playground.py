"""The playground page at `/` in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven
by Selenium against a real daemon serving the demo bundle.
Run: AVMAE_SERVE_BIN=.build/release/avmae-serve python3 -m pytest -q Tests/browser

- a long clip (3 windows) is uploaded: it is streamed (?stream=true) and the timeline grows window by window,
  the bars show the labels /v1/classify gives for the same clip, and the timeline has one column per window;
  the embeddings download is the /v1/embed answer;
- a video is streamed too and classified on both modalities;
- a server with API keys: the page asks for a key on the 401, refuses a wrong one, then works with the right one;
- the browser console has no errors (beyond the 401s the key test provokes on purpose);
- a screenshot of the result is saved (its path is printed) for a person to look at.
"""
import json
import os
import pathlib
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "HTTPServerTests" / "Fixtures"
BINARY = os.environ.get("AVMAE_SERVE_BIN", str(ROOT / ".build" / "release" / "avmae-serve"))
SCREENSHOTS = ROOT / ".build" / "browser"
KEY = "browser-key-0123456789"


class Daemon:
    """`avmae-serve serve` on an ephemeral loopback port with a fresh demo bundle, ready when constructed."""

    def __init__(self, scratch, settings=None):
        bundle = os.path.join(scratch, "bundle")
        subprocess.run([BINARY, "demo-bundle", "--out", bundle], check=True, stdout=subprocess.DEVNULL)
        args = [BINARY, "serve", "--bundle", bundle, "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]
        for key, value in (settings or {}).items():
            args += ["--set", f"{key}={value}"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = "http://127.0.0.1:" + self.process.stdout.readline().strip().rsplit(":", 1)[1]
        deadline = time.time() + 300
        while not self._ready():
            assert time.time() < deadline and self.process.poll() is None, "daemon never became ready"
            time.sleep(0.1)

    def _ready(self):
        try:
            return urllib.request.urlopen(self.url + "/readyz", timeout=5).status == 200
        except (urllib.error.URLError, ConnectionError):
            return False

    def post(self, path, clip, headers=None):
        """The API answer the page should show, asked for directly."""
        request = urllib.request.Request(self.url + path, data=clip.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/octet-stream", **(headers or {})})
        return json.load(urllib.request.urlopen(request, timeout=120))

    def get(self, path, headers=None):
        return json.load(urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers or {})))

    def stop(self):
        self.process.terminate()
        assert self.process.wait(timeout=60) == 0


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield pathlib.Path(folder)


@pytest.fixture(scope="module")
def browser(scratch):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1100,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(scratch / "downloads"),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait(driver, condition, seconds=120):
    return WebDriverWait(driver, seconds).until(lambda _: condition())


def console_errors(driver):
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def shown(driver, element_id):
    return driver.find_element(By.ID, element_id).is_displayed()


def rendered_labels(driver):
    rows = driver.find_elements(By.CSS_SELECTOR, "#labels li")
    return [(row.find_element(By.CLASS_NAME, "name").text, row.find_element(By.CLASS_NAME, "score").text)
            for row in rows]


def test_upload_shows_labels_timeline_and_embeddings(browser, scratch):
    daemon = Daemon(scratch / "open")
    try:
        browser.get(daemon.url + "/")
        wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"))
        model = daemon.get("/v1/models")["models"][0]
        assert browser.find_element(By.ID, "model").text == model["name"]
        assert model["placeholder_labels"] is True and shown(browser, "placeholder-note")  # the demo bundle's
        assert model["version"] in browser.find_element(By.ID, "model-details").text

        watch_requests_and_timeline(browser)
        clip = FIXTURES / "long.flac"  # 25 s: three 10 s windows, at 0, 10 and 15 s
        browser.find_element(By.ID, "clip-file").send_keys(str(clip))
        wait(browser, lambda: shown(browser, "result") and browser.find_element(By.ID, "status").text == "")
        assert not shown(browser, "error"), browser.find_element(By.ID, "error").text

        # Sound is streamed, and the timeline grew one window at a time as the lines came.
        requested, grew = browser.execute_script("return [window.requested, window.timelineWindows()]")
        assert [url for url in requested if "/v1/classify" in url] == ["/v1/classify?top_k=5&stream=true"], requested
        assert grew == ["0", "1", "2", "3"], grew

        expected = daemon.post("/v1/classify?top_k=5&windows=true", clip)
        assert rendered_labels(browser) == [(label["name"], f"{label['score']:.3f}") for label in expected["labels"]]
        widths = [fill.size["width"] for fill in browser.find_elements(By.CSS_SELECTOR, "#labels .fill")]
        assert widths == sorted(widths, reverse=True) and widths[0] > 0

        assert shown(browser, "timeline-section")
        header = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#timeline tr:first-child th")]
        assert header == ["class"] + [f"{w['start_seconds']:.0f} s" for w in expected["timeline"]]
        assert header[1:] == ["0 s", "10 s", "15 s"]  # the last window ends where the clip does
        rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tr")[1:]
        window_names = {label["name"] for window in expected["timeline"] for label in window["labels"]}
        assert rows and {row.find_element(By.TAG_NAME, "th").text for row in rows} <= window_names
        assert all(len(row.find_elements(By.TAG_NAME, "td")) == 3 for row in rows)
        # The colour spans the scores shown: the best cell is darkest, and the best class darker than the last.
        shades = browser.execute_script("""return [...document.querySelectorAll("#timeline tr")].slice(1).map(
            (row) => [...row.cells].slice(1).map((td) => Number(getComputedStyle(td).getPropertyValue("--shade"))))""")
        assert max(map(max, shades)) == 1.0 and all(a > b for a, b in zip(shades[0], shades[-1])), shades

        details = browser.find_element(By.ID, "request-details").text
        assert "inference" in details and "3 window(s)" in details
        assert f"model version\n{expected['model_version']}" in details

        screenshot = SCREENSHOTS / "playground.png"
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(screenshot))
        print(f"\nplayground screenshot: {screenshot}")

        browser.find_element(By.ID, "embed").click()
        download = scratch / "downloads" / "long.embeddings.json"
        wait(browser, download.exists, seconds=60)
        wait(browser, lambda: json.loads(download.read_text() or "null") is not None, seconds=10)
        embedded = json.loads(download.read_text())
        direct = daemon.post("/v1/embed?windows=true", clip)
        assert embedded["dim"] == direct["dim"] and len(embedded["windows"]) == 3
        assert embedded["embeddings"]["audio"] == pytest.approx(direct["embeddings"]["audio"], rel=1e-5, abs=1e-6)

        assert console_errors(browser) == []
    finally:
        daemon.stop()


def test_video_streams_sound_and_pictures(browser, scratch):
    """A video is streamed too, and its windows are classified on sound and pictures alike."""
    daemon = Daemon(scratch / "video")
    try:
        browser.get(daemon.url + "/")
        wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"))
        watch_requests_and_timeline(browser)
        clip = FIXTURES / "clip.mp4"
        browser.find_element(By.ID, "clip-file").send_keys(str(clip))
        wait(browser, lambda: shown(browser, "result") and browser.find_element(By.ID, "status").text == "")
        assert not shown(browser, "error"), browser.find_element(By.ID, "error").text
        requested = browser.execute_script("return window.requested")
        assert [url for url in requested if "/v1/classify" in url] == ["/v1/classify?top_k=5&stream=true"], requested
        expected = daemon.post("/v1/classify?top_k=5", clip)
        assert expected["modalities"] == ["audio", "video"]
        assert rendered_labels(browser) == [(label["name"], f"{label['score']:.3f}") for label in expected["labels"]]
        assert "audio, video" in browser.find_element(By.ID, "request-details").text
        assert console_errors(browser) == []
    finally:
        daemon.stop()


def watch_requests_and_timeline(browser):
    """Records the page's fetch() URLs (window.requested) and every window count the timeline has shown
    (window.timelineWindows()): a mutation record keeps the value it replaced, so none is missed when the
    observer is called once for several changes."""
    browser.execute_script("""
        window.requested = [];
        const fetched = window.fetch;
        window.fetch = (url, init) => { window.requested.push(String(url)); return fetched(url, init); };
        const table = document.getElementById("timeline");
        const replaced = [];
        new MutationObserver((records) => replaced.push(...records.map((record) => record.oldValue)))
            .observe(table, { attributes: true, attributeFilter: ["data-windows"], attributeOldValue: true });
        window.timelineWindows = () => [...replaced, table.dataset.windows]
            .filter((value, i, all) => value !== null && value !== all[i - 1]);
    """)


def test_page_asks_for_the_key_on_401(browser, scratch):
    keys = scratch / "keys"
    keys.write_text(f"{KEY}\n")
    daemon = Daemon(scratch / "keyed", {"api_key_file": str(keys)})
    try:
        browser.get(daemon.url + "/")
        dialog = browser.find_element(By.ID, "key-dialog")
        reason = browser.find_element(By.ID, "key-reason")
        use, cancel = (browser.find_element(By.CSS_SELECTOR, f"#key-dialog button[value={value}]")
                       for value in ("use", "cancel"))
        wait(browser, dialog.is_displayed, seconds=30)
        assert reason.text == "This server wants an API key."
        cancel.click()
        wait(browser, lambda: shown(browser, "error"), seconds=30)
        assert "needs an API key" in browser.find_element(By.ID, "error").text

        # Choosing a clip tries again: the key is asked for again, a wrong one is refused, the right one works.
        clip = FIXTURES / "tone.wav"  # one window: no timeline
        browser.find_element(By.ID, "clip-file").send_keys(str(clip))
        wait(browser, dialog.is_displayed, seconds=30)
        browser.find_element(By.ID, "api-key").send_keys("wrong-key")
        use.click()
        wait(browser, lambda: reason.text == "That key was refused.", seconds=30)
        assert dialog.is_displayed()
        browser.find_element(By.ID, "api-key").send_keys(KEY)
        use.click()
        wait(browser, lambda: shown(browser, "result") and browser.find_element(By.ID, "status").text == "")
        assert not dialog.is_displayed() and not shown(browser, "error")
        assert browser.find_element(By.ID, "model").text == "avmae-demo"
        expected = daemon.post("/v1/classify?top_k=5", clip, {"Authorization": f"Bearer {KEY}"})
        assert rendered_labels(browser) == [(label["name"], f"{label['score']:.3f}") for label in expected["labels"]]
        assert not shown(browser, "timeline-section")

        # The key lives in the script's memory, not in the page or the browser's storage.
        assert browser.find_element(By.ID, "api-key").get_attribute("value") == ""
        assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0

        # The three refused /v1/models calls are logged by Chromium as failed loads; nothing else may be.
        errors = console_errors(browser)
        assert len(errors) == 3 and all("/v1/models" in e and "401" in e for e in errors), errors
    finally:
        daemon.stop()
