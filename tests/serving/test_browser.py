"""The page in headless Chromium (Debian's chromium + chromium-driver).

Drives the page of a real `t2t-mm-serve` process with selenium: a sentence
is typed and submitted and the answer appears; an image gets its class and
a bar chart of its scores; the page's WAV encoder (used for recordings)
makes a file the speech signature decodes, and a recording from Chromium's
fake microphone goes through MediaRecorder, the WAV encoder and the server.
Screenshots are saved under the test's tmp dir. Skipped only when chromium
or chromedriver is not installed (`scripts/debian-packages.txt` has them).
"""

from __future__ import annotations

import shutil
import struct

import pytest

from tests.serving import tiny_export

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 30

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian packages chromium and chromium-driver are not installed",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome import service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=900,1000",
        # A fake microphone (a beep) that needs no permission prompt.
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
    ):
        options.add_argument(argument)
    # An explicit driver path: selenium never looks for one online.
    driver = webdriver.Chrome(
        service=service.Service(executable_path=CHROMEDRIVER), options=options
    )
    driver.set_page_load_timeout(WAIT_S)
    driver.set_script_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser, url: str, signature: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import ui

    browser.get(url)
    select = browser.find_element(By.ID, "signature")
    ui.WebDriverWait(browser, WAIT_S).until(lambda _: select.is_enabled())
    ui.Select(select).select_by_value(signature)


def _wait_for_answer(browser) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import ui

    def answered(_) -> bool:
        return bool(
            browser.find_element(By.ID, "answer").text
            or browser.find_element(By.ID, "error").text
        )

    ui.WebDriverWait(browser, WAIT_S).until(answered)
    assert browser.find_element(By.ID, "error").text == ""
    return browser.find_element(By.ID, "answer").text


def test_sentence_submitted_and_answered(browser, server, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, server.url, "echo_upper")
    browser.find_element(By.ID, "text").send_keys("hello world")
    browser.find_element(By.ID, "run").click()
    assert _wait_for_answer(browser) == "HELLO WORLD (11)"
    latency = browser.find_element(By.ID, "latency").text
    assert latency.startswith("Latency: ") and "ms round trip" in latency
    screenshot = tmp_path / "serve_text.png"
    assert browser.save_screenshot(str(screenshot))
    header = screenshot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width >= 600 and height >= 400


def test_image_class_and_score_chart(browser, server, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    image = tmp_path / "light.png"
    image.write_bytes(tiny_export.png_bytes(204, 20, 30))  # mean 0.8
    _open(browser, server.url, "classify_brightness")
    browser.find_element(By.ID, "file").send_keys(str(image))
    browser.find_element(By.ID, "run").click()
    assert _wait_for_answer(browser) == "bright (class 1)"
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
    widths = [float(bar.get_attribute("width")) for bar in bars]
    # Sorted by score: 0.8 then 0.2, widths in that ratio.
    assert len(widths) == 2
    assert widths[0] / widths[1] == pytest.approx(4.0, rel=1e-3)
    labels = [
        t.text for t in browser.find_elements(By.CSS_SELECTOR, "#chart text")
    ]
    assert labels == ["bright", "0.800", "class 0", "0.200"]
    assert browser.save_screenshot(str(tmp_path / "serve_image.png"))


def test_recording_wav_encoder_makes_decodable_wav(browser, server) -> None:
    _open(browser, server.url, "transcribe_length")
    script = """
      const done = arguments[arguments.length - 1];
      const samples = new Float32Array([0, 0.5, -1, 1, 0.25]);
      const wav = encodeWav(samples, 22050);
      // As the page sends it: without the JSON Content-Type a browser
      // sends text/plain, which the server refuses (cross_site.py).
      fetch(API + ":predict", {method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({signature_name: "transcribe_length",
                              instances: [{b64: base64(wav)}]})})
        .then((r) => r.json())
        .then((body) => done([Array.from(wav.slice(0, 48)), body]))
        .catch((e) => done(String(e)));
    """
    header, body = browser.execute_async_script(script)
    assert body == {"predictions": ["5 samples at 22050 Hz"]}
    data = bytes(header)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    # PCM, mono, 22050 Hz, 16 bits; the first samples 0 and 0.5 * 32767.
    assert struct.unpack("<HHIIHH", data[20:36]) == (1, 1, 22050, 44100, 2, 16)
    assert struct.unpack("<hh", data[44:48]) == (0, 16383)


def test_recording_from_the_fake_microphone(browser, server) -> None:
    import re
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import ui

    _open(browser, server.url, "transcribe_length")
    record = browser.find_element(By.ID, "record")
    record.click()
    ui.WebDriverWait(browser, WAIT_S).until(lambda _: record.text == "Stop")
    time.sleep(1.0)
    record.click()
    status = browser.find_element(By.ID, "record-status")
    ui.WebDriverWait(browser, WAIT_S).until(
        lambda _: (
            status.text.startswith("Recorded")
            or browser.find_element(By.ID, "error").text
        )
    )
    num_bytes = int(
        re.fullmatch(r"Recorded (\d+) bytes of WAV\.", status.text)[1]
    )
    browser.find_element(By.ID, "run").click()
    answer = _wait_for_answer(browser)
    match = re.fullmatch(r"(\d+) samples at (\d+) Hz", answer)
    assert match, answer
    samples, rate = int(match[1]), int(match[2])
    assert samples == (num_bytes - 44) // 2  # mono 16-bit after the header
    assert rate >= 8000 and samples >= rate // 4  # about 1 s recorded


def test_a_plain_text_post_is_refused(browser, server) -> None:
    # What any web page can send cross-site without a CORS preflight: a
    # string body, which Chromium labels text/plain. It ran the model before.
    _open(browser, server.url, "echo_upper")
    script = """
      const done = arguments[arguments.length - 1];
      fetch(API + ":predict", {method: "POST", body: JSON.stringify({
        signature_name: "echo_upper", instances: ["hi"]})})
        .then(async (r) => done([r.status, await r.json()]))
        .catch((e) => done(String(e)));
    """
    status, body = browser.execute_async_script(script)
    assert status == 415
    assert body["error"].startswith(
        "Content-Type must be application/json, got 'text/plain;charset=UTF-8'"
    )
