"The any-time viewer in a real browser: headless Chromium loads the page, a test moves the sliders, the screenshots before and after differ, and the page logs no console error."
from pathlib import Path
import torch
from elt.viewer import png_strip, viewer_html

ROOT = Path(__file__).resolve().parents[1]

def synthetic_data() -> dict:
    "A page's data with a different random picture at every (model, loops, step, class)."
    g, loops, steps, models = torch.Generator().manual_seed(0), [1, 2, 3], 4, ['ELT (ILSD)', 'vanilla looped']
    images = {m: {L: [[png_strip(torch.rand(2, 28, 28, generator=g)) for _ in range(10)] for _ in range(steps + 1)] for L in loops} for m in models}
    metrics = {m: {L: {'metric': 100.0 / L + i, 'class_consistency': 0.5 + 0.1 * L, 'gflops': 0.1 * L, 'n': 20} for L in loops}
               for i, m in enumerate(models)}
    return {'title': 'synthetic', 'models': models, 'loops': loops, 'loops_max': 2, 'steps': steps, 'steps_name': 'DDIM steps',
            'classes': [f'class {c}' for c in range(10)], 'metric': 'FID-FMNIST', 'images': images, 'metrics': metrics}

def _drag_to_left_end(driver, element_id: str):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    slider = driver.find_element(By.ID, element_id)
    ActionChains(driver).click_and_hold(slider).move_by_offset(-slider.size['width'] // 2 + 1, 0).release().perform()
    return slider.get_attribute('value')

def pages(tmp_dir: Path) -> list[Path]:
    page = tmp_dir/'viewer.html'; page.write_text(viewer_html(synthetic_data()))
    committed = ROOT/'figures'/'anytime_viewer.html'
    return [page] + ([committed] if committed.exists() else [])

def test_sliders_move_the_pictures(browser, tmp_path):
    from selenium.webdriver.common.by import By
    for page in pages(tmp_path):
        browser.get(page.as_uri())
        browser.get_log('browser')                                                    # start from an empty console
        before, src, stats = browser.get_screenshot_as_png(), *(browser.find_element(By.ID, i).get_attribute(a) for i, a in (('img-0', 'src'), ('stats-0', 'textContent')))
        assert src.startswith('data:image/png;base64,'), f"{page.name}: the picture is not an embedded PNG"
        assert _drag_to_left_end(browser, 'loops') == '0', f"{page.name}: dragging the loops slider to its left end should select the first loop count"
        moved_loops = browser.get_screenshot_as_png()
        assert browser.find_element(By.ID, 'stats-0').get_attribute('textContent') != stats, f"{page.name}: the scores must follow the loop count"
        assert _drag_to_left_end(browser, 'step') == '1', f"{page.name}: dragging the step slider to its left end should select step 1"
        moved_step = browser.get_screenshot_as_png()
        assert browser.find_element(By.ID, 'img-0').get_attribute('src') != src, f"{page.name}: the picture did not change"
        assert before != moved_loops != moved_step, f"{page.name}: the screenshots before and after moving the sliders are the same"
        errors = [e for e in browser.get_log('browser') if e['level'] == 'SEVERE']
        assert not errors, f"{page.name}: console errors {errors}"
        print(f"{page.name}: loops and step sliders moved; {len(before)}, {len(moved_loops)}, {len(moved_step)}-byte screenshots differ; no console errors")
