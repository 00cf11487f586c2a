"""The phone's web page in a real browser: Debian's chromium (headless) driven by selenium through
Debian's chromedriver, against `deskphone simulate --headless` registered at the lab's Kamailio.
Each page's screenshot is written to docs/admin/ (what an installer sees)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desk import Desk, lab_sip, start
from tests.helpers import free_port, wait_for
from tests.lab.fixtures import lab_port
from tests.lab.lab import Kamailio, need

pytestmark = pytest.mark.lab

PASSWORD = "correct horse battery"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "admin"


def _browser(tmp_path: Path):  # -> selenium WebDriver
    need("chromium", "chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    # Headless as root on a closed network: no sandbox, nothing fetched in the background.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=900,720",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Desk, str, object]]:
    need("kamailio")
    kam = Kamailio(tmp_path / "kamailio", port=lab_port()).start()
    secret = tmp_path / "admin_password"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    port = free_port()
    desk = start(tmp_path, wait=False, sip=lab_sip(kam.port),
                 admin={"listen": f"127.0.0.1:{port}", "password_file": str(secret)})
    driver = None
    try:
        desk.api_up()
        desk.until(lambda s: s["registration"] == "registered", "registered", timeout=20)
        driver = _browser(tmp_path)
        yield desk, f"http://127.0.0.1:{port}", driver
    finally:
        if driver is not None:
            driver.quit()
        desk.stop()
        kam.stop()


def _shot(driver, name: str) -> None:
    # Written only where asked (UPDATE_SCREENSHOTS=1) or where none exists yet: a test run
    # never churns the committed pictures.
    path = SHOTS / f"{name}.png"
    if os.environ.get("UPDATE_SCREENSHOTS") or not path.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))


def _login(driver, base: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    wait_for(lambda: "Log in" in driver.title, what="the login form")
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.TAG_NAME, "button").click()


def test_an_installer_logs_in_and_reads_every_page(site) -> None:
    from selenium.webdriver.common.by import By

    _, base, driver = site
    _login(driver, base, "wrong")
    wait_for(lambda: "Wrong user or password" in driver.page_source, what="the refusal")
    _shot(driver, "login-refused")
    _login(driver, base, PASSWORD)
    wait_for(lambda: driver.title.startswith("Status"), what="the status page")
    body = driver.find_element(By.TAG_NAME, "main").text
    assert "registered" in body and "127.0.0.1:" in body and "UDP" in body
    _shot(driver, "status")
    for path, title, expect in (("/screen", "Screen", "Alice Martin"),
                                ("/recent", "Recent calls", "No calls yet"),
                                ("/config", "Configuration", "[sip]"),
                                ("/logs?q=sip", "Logs", "SIP")):
        driver.get(base + path)
        wait_for(lambda title=title: driver.title.startswith(title), what=title)
        assert expect in driver.find_element(By.TAG_NAME, "main").text, path
        _shot(driver, path.strip("/").split("?")[0])
    assert "pw101" not in driver.page_source and PASSWORD not in driver.page_source
    # The screen image is the phone's display, loaded by the browser.
    driver.get(base + "/screen")
    width = driver.execute_script("return document.querySelector('img.screen').naturalWidth")
    assert width == 128


def test_a_form_without_the_token_is_refused_and_the_button_works(site) -> None:
    from selenium.webdriver.common.by import By

    desk, base, driver = site
    _login(driver, base, PASSWORD)
    wait_for(lambda: driver.title.startswith("Status"), what="the status page")
    # What a forged cross-site form would send: the cookie rides along, the token does not.
    driver.execute_script("const f = document.createElement('form'); f.method = 'post';"
                          "f.action = '/reregister'; document.body.appendChild(f); f.submit();")
    wait_for(lambda: "security token" in driver.page_source, what="the refusal")
    assert "registering now" not in desk.log.read_text()
    driver.get(base + "/")
    wait_for(lambda: driver.title.startswith("Status"), what="the status page")
    driver.find_element(By.XPATH, "//button[text()='Register again']").click()
    wait_for(lambda: "Registering again" in driver.page_source, what="the note")
    wait_for(lambda: "registering now" in desk.log.read_text(), what="SIP told to register")


def _fill(driver, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.XPATH, "//button[text()='Check and apply']").click()


def test_a_config_edit_with_two_mistakes_changes_nothing_and_a_good_one_is_applied(
        site, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    desk, base, driver = site
    _login(driver, base, PASSWORD)
    wait_for(lambda: driver.title.startswith("Status"), what="the status page")
    driver.get(base + "/config")
    wait_for(lambda: driver.title.startswith("Configuration"), what="the form")
    assert driver.find_element(By.ID, "phone.name").get_attribute("value") == "Alice Martin"
    assert driver.find_element(By.ID, "sip.password").get_attribute("value") == ""
    _fill(driver, {"sip.register_expires": "ten", "phone.region": "XX"})
    wait_for(lambda: "Nothing was changed: 2 problems below" in driver.page_source,
             what="the refusal")
    assert "must be an integer, not str" in \
        driver.find_element(By.ID, "problem-sip.register_expires").text
    assert "not an ISO country code" in driver.find_element(By.ID, "problem-phone.region").text
    # What was typed stays in the boxes, to be mended; nothing was written or restarted.
    assert driver.find_element(By.ID, "phone.region").get_attribute("value") == "XX"
    assert not (tmp_path / "web.toml").exists()
    assert "restarting" not in desk.log.read_text()
    driver.execute_script("document.getElementById('phone.region')"
                          ".scrollIntoView({block: 'center'})")
    _shot(driver, "config-problems")

    _fill(driver, {"sip.register_expires": "120", "phone.region": "BE",
                   "phone.name": "Front desk"})
    wait_for(lambda: "the phone restarts with the new settings" in driver.page_source,
             what="the change saved")
    layer = (tmp_path / "web.toml").read_text()
    assert "register_expires = 120" in layer and 'name = "Front desk"' in layer
    assert "region" not in layer and "pw101" not in layer  # unchanged boxes stay out
    # The phone restarts and registers again with the new settings: its name on the idle
    # screen shows only once registered.
    wait_for(lambda: "deskphone: restarting" in desk.log.read_text(), what="the restart")
    desk.until(lambda s: s["registration"] == "registered" and
               s["screen"][0].startswith("Front desk"), "registered again", timeout=30)
    _login(driver, base, PASSWORD)
    wait_for(lambda: driver.title.startswith("Status"), what="logged in again")
    driver.get(base + "/config")
    wait_for(lambda: driver.title.startswith("Configuration"), what="the form: " + driver.title)
    row = driver.find_element(By.ID, "phone.name").find_element(By.XPATH, "./ancestor::tr")
    assert "from: web page" in row.text
    _shot(driver, "config")
