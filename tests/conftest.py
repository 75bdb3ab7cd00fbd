"Fixtures the tests share: a scratch run store (`runs`), and headless Chromium driven by selenium (Debian's chromium and chromium-driver)."
import shutil
from pathlib import Path
import pytest

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
DRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'

@pytest.fixture(scope='module')
def browser():
    for path in (CHROMIUM, DRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} not found: the browser test needs headless Chromium and its driver. `make test` installs Debian's "
                        "packages as root (apt-get install chromium chromium-driver); elsewhere install them and put them on PATH.")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions(); opts.binary_location = CHROMIUM
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1280,900'): opts.add_argument(arg)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()



@pytest.fixture
def runs(tmp_path, monkeypatch):
    "A scratch `ELT_RUNS` for the test's training runs, with stale reuse off."
    monkeypatch.setenv('ELT_RUNS', str(tmp_path / 'runs'))
    monkeypatch.delenv('ELT_REUSE_STALE', raising=False)
    return tmp_path / 'runs'
