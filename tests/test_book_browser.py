"The book in a real browser: `build_book` renders a few pages (library notebooks executed), a loopback HTTP server serves them, headless Chromium opens them with no network beyond it, follows the navigation, finds the math typeset by the local MathJax and the figures loaded, and the console stays free of errors."
from pathlib import Path
import pytest
from elt.docs import book_pages, build_book

ROOT = Path(__file__).resolve().parents[1]
# MathJax's requests for its TeX fonts (a few symbols, e.g. \mathbb), which the jupyter-server-mathjax wheel does not ship:
# they fail (404) and MathJax draws the symbol from STIX-Web. Every other console error fails the test.
MATHJAX_TEX_FONTS = '/mathjax/fonts/HTML-CSS/TeX/'
PAGES = ['index.ipynb', 'results.ipynb', '02_looped.ipynb', '03_ilsd.ipynb', '09_flow.ipynb', '13b_verdict.ipynb']

@pytest.fixture(scope='module')
def book(tmp_path_factory):
    "The book's pages, served on the loopback interface for the test's duration (as `python -m http.server -d _book` would)."
    import functools, http.server, threading
    index = build_book(tmp_path_factory.mktemp('book')/'book', only=PAGES, execute=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield index.parent, f"http://127.0.0.1:{server.server_port}"
    server.shutdown(); server.server_close()

def _settled(driver, url: str):
    "Open `url` and wait for MathJax to finish typesetting (its queue is empty)."
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && (!window.MathJax || !MathJax.Hub || MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0)"))

def test_book_pages_render_offline(browser, book, tmp_path):
    from selenium.webdriver.common.by import By
    (root, base), n_pages = book, len(book_pages())
    sizes = {}
    for name in PAGES:
        page = root/'nbs'/name.replace('.ipynb', '.html'); assert page.exists(), f"{page} was not written"
        browser.get_log('browser')                                                    # start each page from an empty console
        _settled(browser, f"{base}/nbs/{page.name}")
        links = browser.find_elements(By.CSS_SELECTOR, 'nav.book a')
        assert len(links) == n_pages, f"{name}: the navigation lists {len(links)} pages, the book has {n_pages}"
        assert browser.find_element(By.CSS_SELECTOR, 'nav.book a.current').text, f"{name}: the current page is not marked in the navigation"
        broken = browser.execute_script("return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert not broken, f"{name}: images that did not load: {broken}"
        errors = [e for e in browser.get_log('browser') if e['level'] == 'SEVERE' and MATHJAX_TEX_FONTS not in e['message']]
        assert not errors, f"{name}: console errors {errors}"
        shot = tmp_path/f"{page.stem}.png"; browser.save_screenshot(str(shot)); sizes[name] = shot.stat().st_size
    # math: the verdict rule's equations (notebook 13b) typeset by MathJax, no TeX left raw or in error
    _settled(browser, f'{base}/nbs/13b_verdict.html')
    typeset = browser.execute_script("return document.querySelectorAll('.MathJax, .MathJax_Display').length")
    raw_errors = browser.execute_script("return document.querySelectorAll('.MathJax_Error, merror').length")
    assert typeset > 10 and raw_errors == 0, f"13b_verdict: {typeset} typeset formulas, {raw_errors} in error"
    # figures: the looped block's picture drawn by the executed notebook, and the results page's committed figures
    _settled(browser, f'{base}/nbs/02_looped.html')
    assert browser.execute_script("return [...document.images].filter(i => i.src.startsWith('data:image/png') && i.naturalWidth > 300).length") >= 1, \
        "02_looped: the executed notebook's figure (the looped block) is not on the page"
    # navigation: follow the link from the front page to notebook 03
    _settled(browser, f'{base}/nbs/index.html')
    browser.find_element(By.XPATH, "//nav[@class='book']//a[contains(@href, '03_ilsd.html')]").click()
    assert browser.current_url.endswith('/nbs/03_ilsd.html'), f"the navigation led to {browser.current_url}"
    assert 'Intra-Loop Self Distillation' in browser.find_element(By.TAG_NAME, 'h1').text
    print('book pages: ' + ', '.join(f'{n} {s} bytes' for n, s in sizes.items()) + f'; {typeset} formulas typeset on 13b_verdict')
