"""Package-level checks that no single notebook can make: imports, notebook/package sync, README, papermill."""
import filecmp, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODULES = sorted('.'.join(p.relative_to(ROOT / 'elt').with_suffix('').parts) for p in (ROOT / 'elt').rglob('*.py') if not p.name.startswith('_'))


def test_modules_found():
    assert {'core', 'data', 'method.family', 'families.maskgit', 'experiments.run'} <= set(MODULES), MODULES


@pytest.mark.parametrize('module', MODULES)
def test_module_imports_in_fresh_interpreter(module):
    res = subprocess.run([sys.executable, '-c', f'import elt.{module}'], capture_output=True, text=True, cwd='/')
    assert res.returncode == 0, res.stderr


def _tree(root: Path, sub: str):
    return {p.relative_to(root) for p in (root / sub).rglob('*')
            if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts}


def test_notebooks_and_package_in_sync(tmp_path):
    "nbdev_export and nbdev_clean, run on a copy of the project, change nothing under nbs/ or elt/."
    for name in ('settings.ini', 'setup.py', 'README.md'): shutil.copy(ROOT / name, tmp_path / name)
    for sub in ('nbs', 'elt'):
        shutil.copytree(ROOT / sub, tmp_path / sub, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    for cmd in ('nbdev_export', 'nbdev_clean'):
        res = subprocess.run([str(BIN / cmd)], cwd=tmp_path, capture_output=True, text=True)
        assert res.returncode == 0, f'{cmd} failed:\n{res.stderr}'
    for sub in ('nbs', 'elt'):
        before, after = _tree(ROOT, sub), _tree(tmp_path, sub)
        assert before == after, f'{cmd} added or removed files: {sorted(before ^ after)}'
        changed = [str(p) for p in sorted(before) if not filecmp.cmp(ROOT / p, tmp_path / p, shallow=False)]
        assert not changed, f'out of sync (edit the notebooks, then run `make export`): {changed}'


def test_the_executed_copies_are_current():
    "Every library notebook's executed copy (executed/, what a reader sees with outputs) was run from the cells it holds now."
    from elt.docs import stale_copies
    stale = [nb.name for nb in stale_copies()]
    assert not stale, f"the executed copies of {stale} are missing or were run from other cells: run `make executed` and commit executed/"


def test_readme_generated_from_index():
    from elt.experiments.pages import PAGES, readme_markdown
    for notebook, page in PAGES.items():
        assert (ROOT / page).read_text() == readme_markdown(page=page), f'{page} is stale (its notebook is nbs/{notebook}): run `make readme`'


def test_readme_is_a_front_door():
    lines = (ROOT / 'README.md').read_text().splitlines()
    assert len(lines) <= 200, f'README.md has {len(lines)} lines; the front door is at most about 200 (move detail to nbs/results.ipynb)'
    text = '\n'.join(lines)
    for link in ('figures/README.md', 'figures/claims.md', 'nbs/teaching.ipynb', 'nbs/guide.ipynb', 'figures/method_looped.png'):
        assert f']({link})' in text, f'README.md should link {link}'
        assert (ROOT / link).exists(), f'README.md links {link}, which does not exist'


def test_papermill_refuses_unknown_parameter(tmp_path):
    "A misspelt papermill parameter stops the run with a message naming it, instead of running the defaults."
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    nb = ROOT / 'nbs' / 'experiments' / 'data_overview.ipynb'
    with pytest.raises(PapermillExecutionError, match=r"unknown parameter\(s\) \['n_per_klass'\]"):
        pm.execute_notebook(nb, tmp_path / 'out.ipynb', parameters={'n_per_klass': 3, 'out_dir': str(tmp_path)},
                            kernel_name='python3', cwd=str(ROOT), progress_bar=False)
    assert not (tmp_path / 'data_fmnist.png').exists()


def test_experiment_notebooks_declare_parameters():
    "Every experiment notebook has a tagged parameters cell with an out_dir that defaults to the scratch folder."
    import papermill as pm
    for nb in sorted((ROOT / 'nbs' / 'experiments').glob('*.ipynb')):
        params = pm.inspect_notebook(str(nb))
        assert params, f'{nb.name} has no cell tagged "parameters"'
        assert params.get('out_dir', {}).get('default') in ('""', "''"), f'{nb.name}: out_dir must default to ""'


@pytest.mark.parametrize('profile', ['smoke', 'default', 'gpu'])
def test_profile_parameters_fit_the_notebooks(profile):
    "Every parameter a profile passes is declared by its notebook, with the type of the notebook's default, and every recipe builds."
    from elt.experiments.run import experiment_plan
    assert len(experiment_plan(profile)) >= 10          # experiment_plan checks each one's parameters (check_parameters) or raises


def test_smoke_profile_end_to_end():
    "Every experiment notebook, in make-figures order, at smoke size: trains, evaluates, writes claims.md to .scratch, not figures/."
    import hashlib
    digest = lambda: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((ROOT / 'figures').glob('*')) if p.is_file()}
    before = digest()
    res = subprocess.run([sys.executable, '-m', 'elt.experiments.run', '--profile', 'smoke', '--kernel', 'python3'], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    claims = (ROOT / '.scratch' / 'figures' / 'claims.md').read_text()
    assert claims.count('| **') >= 6, claims              # one verdict per claim
    assert digest() == before, 'a smoke run wrote into figures/'
    _every_record_has_its_schema(ROOT / '.scratch' / 'figures')     # every writer built its schema's dataclass


def _every_record_has_its_schema(folder):
    from elt.experiments.results import SCHEMAS, load_results
    files = sorted(folder.glob('*.json'))
    assert files, f'no results in {folder}'
    for p in files:
        assert type(load_results(p.stem, folder)) in SCHEMAS.values(), p     # load_results refuses a record without its schema


def test_every_committed_results_file_names_its_schema():
    _every_record_has_its_schema(ROOT / 'figures')
