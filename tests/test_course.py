"""The course's hand-out and grading (nbs/00b_course.ipynb), end to end on every lesson: the student release holds no
solution and no hidden check; graded by the instructor's checks, the untouched release scores 0, the reference solutions
score full marks, and a submission whose check cells were deleted or edited still scores 0 on its stubs."""
import json
from pathlib import Path

import pytest

from elt.course import grade, student_release
from elt.exercises import LESSONS, _directive, exercises, solutions


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    return student_release(tmp_path_factory.mktemp('course') / 'student')


def _cells(path):
    return json.loads(Path(path).read_text())['cells']


def _kind(cell):
    words = _directive(cell, 'exercise') if cell['cell_type'] == 'code' else None
    return None if not words else 'check' if words[1:] == ['check'] else words[0]


def _submit(release, tmp_path, notebook, who, change) -> Path:
    cells = _cells(release / 'nbs' / f'{notebook}.ipynb')
    change(notebook, cells)
    path = tmp_path / f'{who}-{notebook}.ipynb'
    path.write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    return path


def _solve(notebook, cells):
    for c in cells:
        if (name := _kind(c)) not in (None, 'check'):
            c['source'] = f'#| exercise {name}\n' + solutions(notebook)[name].split('\n', 1)[1]


def _vandalise(notebook, cells):
    checks = [c for c in cells if _kind(c) == 'check']
    for c in checks[1:]: c['source'] = c['source'][:1] + ['pass\n']     # made to pass
    cells.remove(checks[0])                                             # and one deleted


def test_the_release_holds_no_solution_and_no_hidden_check(release):
    assert not (release / 'nbs' / 'solutions').exists() and not (release / 'tests' / 'test_exercises.py').exists()
    for nb in LESSONS:
        text = (release / 'nbs' / f'{nb}.ipynb').read_text()
        assert 'BEGIN HIDDEN TESTS' not in text, nb
        assert sorted(n for c in _cells(release / 'nbs' / f'{nb}.ipynb') if (n := _kind(c)) not in (None, 'check')) == sorted(exercises(nb))


@pytest.mark.parametrize('notebook', LESSONS)
def test_grading_untouched_solved_and_vandalised_submissions(release, tmp_path, notebook):
    n = len(exercises(notebook))
    scores = {who: sum(s['points'] for s in grade(_submit(release, tmp_path, notebook, who, change)).values())
              for who, change in [('untouched', lambda nb, cells: None), ('solved', _solve), ('vandalised', _vandalise)]}
    assert scores == {'untouched': 0, 'solved': n, 'vandalised': 0}, scores
