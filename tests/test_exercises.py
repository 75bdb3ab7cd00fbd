"""Every exercise's self-check passes against its reference solution and fails, with an AssertionError, against the untouched
stub: "not done yet" for a stub that raises NotImplementedError, the check's own diagnosis for a debug exercise's planted bug."""
import pytest
from elt.exercises import LESSONS, exercise_titles, exercises, solutions

CASES = [(nb, name) for nb in LESSONS for name in exercises(nb)]

def _run(*sources) -> dict:
    namespace = {}
    for src in sources: exec(compile(src, '<cell>', 'exec'), namespace)
    return namespace

@pytest.mark.parametrize('notebook,name', CASES, ids=[name for _, name in CASES])
def test_check_passes_against_the_solution(notebook, name):
    _run(solutions(notebook)[name], exercises(notebook)[name]['check'])

@pytest.mark.parametrize('notebook,name', CASES, ids=[name for _, name in CASES])
def test_check_fails_against_the_stub(notebook, name):
    ex, kind = exercises(notebook)[name], exercise_titles(notebook)[name][2]
    # a debug exercise's stub is the buggy code itself: its check fails with the check's own message, whatever it says
    with pytest.raises(AssertionError, match=None if kind == 'debug' else f'exercise {name} is not done yet'):
        _run(ex['stub'], ex['check'])

def test_every_lesson_has_exercises_and_solutions():
    assert len(CASES) >= 2 * len(LESSONS)
    for nb in LESSONS: assert set(solutions(nb)) == set(exercises(nb)), nb
