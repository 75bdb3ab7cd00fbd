"""The reliability round's findings, one test each: model files that prove their integrity, workers that die with their
parent, results checked when read, early and clear refusals, and loading that writes nothing. Each reproduces the
finding through the public API (or the command line) and checks what the user now sees."""
import json, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch

from elt.core import CheckpointError
from elt.experiments.reproduce import Recipe, _eval_path, evaluate_loops, train_model
from elt.experiments.results import ResultsError, load_results
from elt.experiments.zoo import manifests, shipped, verify
from elt.method.family import load_model, save_model

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / 'data' / 'zoo'
MODEL = ZOO / 'diffusion-1x8-ilsd-seed0.pt'
TINY = Recipe('diffusion', steps=3, batch_size=8, n_samples=10, sample_steps=2, options={'patch': 7})


def flip_in_largest_record(src: Path, dst: Path, bit: int = 0x01) -> str:
    "A copy of `src` with one bit flipped in the middle of its largest record (a weight tensor); returns the record's name."
    import zipfile
    with zipfile.ZipFile(src) as z: info = max(z.infolist(), key=lambda i: i.file_size)
    raw = bytearray(src.read_bytes())
    with open(src, 'rb') as f:                                   # the local header's own lengths locate the record's bytes
        f.seek(info.header_offset + 26); name_len, extra_len = int.from_bytes(f.read(2), 'little'), int.from_bytes(f.read(2), 'little')
    raw[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= bit
    dst.write_bytes(bytes(raw))
    return info.filename


# 1. Model files that prove their integrity
def test_1_a_flipped_bit_in_a_model_file_is_refused_by_load_model(tmp_path):
    record = flip_in_largest_record(MODEL, tmp_path / 'damaged.pt')
    torch.load(tmp_path / 'damaged.pt', weights_only=True)      # torch alone loads it without a word: the finding
    with pytest.raises(CheckpointError, match='fails the CRC-32 checksum stored with it') as e:
        load_model(tmp_path / 'damaged.pt')
    assert str(tmp_path / 'damaged.pt') in str(e.value) and record.split('/', 1)[1] in str(e.value)


def test_1_non_finite_weights_are_refused_at_load(tmp_path):
    model = load_model(MODEL)
    with torch.no_grad(): next(model.net.parameters()).view(-1)[0] = float('inf')
    save_model(tmp_path / 'inf.pt', model, dtype=torch.bfloat16)
    with pytest.raises(CheckpointError, match=r'holds non-finite weights \(NaN or infinity\) in net\.'):
        load_model(tmp_path / 'inf.pt')


# 2. Workers that die with their parent
WORKERS = """
import os, sys
sys.path.insert(0, {root!r})
os.environ['ELT_RUNS'] = {runs!r}
from elt.experiments.reproduce import Recipe, train_models
rec = Recipe('diffusion', steps=10**6, batch_size=8, n_samples=10, sample_steps=2, options={{'patch': 7}})
print('parent', os.getpid(), flush=True)
train_models([(rec, '2x2', 'ilsd', 0), (rec, '2x2', 'ilsd', 1)], workers=2, device='cpu')
"""


def children_of(pid: int) -> list[int]:
    "The pids whose parent is `pid` (from /proc)."
    out = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try: fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        if int(fields[1]) == pid: out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try: state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError: return False
    return state != 'Z'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux-only')
def test_2_a_sigkilled_trainer_leaves_no_worker_training_and_frees_its_runs(tmp_path):
    runs = tmp_path / 'runs'
    parent = subprocess.Popen([sys.executable, '-c', textwrap.dedent(WORKERS.format(root=str(ROOT), runs=str(runs)))], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline().split()[1])
        deadline = time.time() + 120
        while time.time() < deadline and len(list(runs.rglob('log.jsonl'))) < 2: time.sleep(0.2)   # both workers are training
        assert len(list(runs.rglob('log.jsonl'))) == 2, 'the two workers did not start training'
        workers = [c for c in children_of(pid) if 'spawn_main' in Path(f'/proc/{c}/cmdline').read_bytes().decode(errors='replace')]
        assert len(workers) == 2
    finally:
        parent.send_signal(signal.SIGKILL); parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(w) for w in workers): time.sleep(0.1)
    assert not any(alive(w) for w in workers), 'a worker outlived the SIGKILLed process that started it'
    from elt.method.train import RunLock
    for lock in runs.rglob('.lock'):                                     # each run's lock goes with its worker (teardown is asynchronous)
        deadline = time.time() + 30
        while True:
            try: RunLock(lock.parent).release(); break
            except RuntimeError:
                if time.time() > deadline: raise
                time.sleep(0.2)


# 3. Results checked when read
def _anytime_record(rows):
    run = {'run': 'r', 'params': 1, 'train_seconds': 1.0, 'rows': rows, 'seed': 0}
    return {'name': 'maskgit_anytime', 'schema': 'anytime', 'git_commit': 'abc', 'wall_time_s': 1,
            'results': {'recipe': {}, 'split': '1x2', 'loops_max': 2, 'seeds': [0], 'models': {'ELT (ILSD)': [run]}}}


@pytest.mark.parametrize('text, says', [
    ('', 'is empty (a write that never finished?)'),
    ('{"name": "maskgit_anytime", "schema": "any', 'is not valid JSON (Unterminated string'),
    ('[1, 2]', 'holds a JSON list, not a results record'),
    (json.dumps({**_anytime_record([{'loops': 1, 'FID-FMNIST': 9.0}]), 'results': {**_anytime_record([])['results'], 'loops_max': 'four'}}),
     "results.loops_max: expected int, got str 'four'"),
    (json.dumps(_anytime_record([{'loops': 1}])), 'row 0 (L = 1) has FID-FMNIST None, not a finite number'),
    (json.dumps(_anytime_record([{'loops': 1, 'FID-FMNIST': None}])), 'row 0 (L = 1) has FID-FMNIST None, not a finite number'),
    (json.dumps(_anytime_record([{'loops': 0, 'FID-FMNIST': 9.0}])), 'has loops 0, not a loop count'),
])
def test_3_a_results_file_is_checked_when_read(tmp_path, text, says):
    (tmp_path / 'maskgit_anytime.json').write_text(text)
    with pytest.raises(ResultsError) as e: load_results('maskgit_anytime', tmp_path)
    assert says in str(e.value) and ('maskgit_anytime' in str(e.value))
    assert '--only maskgit_anytime' in str(e.value) or 'rerun the experiment' in str(e.value)


def test_3_a_cached_evaluation_without_its_metric_is_recomputed(runs, capsys):
    t = train_model(TINY, '2x2', show_progress=False)
    row = evaluate_loops(t, [1], show_progress=False)[0]
    js = _eval_path(t, 1, None, 0, TINY.sample_steps).with_suffix('.json')
    js.write_text('{"loops": 1}')
    again = evaluate_loops(t, [1], show_progress=False)[0]
    assert again['FID-FMNIST'] == pytest.approx(row['FID-FMNIST']) and 'holds no finite FID-FMNIST: recomputing it' in capsys.readouterr().err


# 4. Early, clear refusals
def test_4_too_few_samples_are_refused_before_training():
    with pytest.raises(ValueError, match='refused before any training'): Recipe('diffusion', n_samples=5)


def test_4_a_model_file_with_an_edited_family_names_itself(tmp_path):
    state = torch.load(MODEL, weights_only=True); state['cfg']['family'] = 'flow'
    torch.save(state, tmp_path / 'edited.pt')
    with pytest.raises(CheckpointError) as e: load_model(tmp_path / 'edited.pt')
    assert str(tmp_path / 'edited.pt') in str(e.value) and "cannot build the model its config names (family 'flow'" in str(e.value)
    assert 're-save the model with save_model' in str(e.value)


def test_4_a_missing_zoo_folder_is_called_missing(monkeypatch, tmp_path):
    monkeypatch.setenv('ELT_ZOO', str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match=r"the zoo folder .*nowhere does not exist \(ELT_ZOO="):
        shipped('diffusion-2x4-ilsd-seed0')


@pytest.mark.parametrize('module, args, says', [
    ('elt.experiments.run', ['--profile', 'smoke', '--only', 'no_such_experiment'], "unknown experiment(s) ['no_such_experiment']"),
    ('elt.experiments.reproduce', ['--family', 'diffusion', '--recipe', '{"n_samples": 5}'], 'refused before any training'),
])
def test_4_a_command_line_refusal_prints_its_message_without_a_traceback(module, args, says):
    r = subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith('error: ') and says in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]


# 6. Loading never writes
def test_6_a_shipped_masked_model_loads_without_fitting_or_writing(monkeypatch):
    import elt.families.maskgit as maskgit
    def refuse(*args, **kw): raise AssertionError('loading a shipped model fitted (or looked up) a tokenizer')
    monkeypatch.setattr(maskgit, 'get_tokenizer', refuse)
    manifest = next(m for m in manifests(ZOO) if m['name'] == 'maskgit-2x4-ilsd-seed0')
    cache = ROOT / 'data' / 'cache'
    before = sorted(cache.rglob('*')) if cache.exists() else []
    verify(manifest, ZOO)                                        # bytes, then what it computes on the fixed input: from the file alone
    assert (sorted(cache.rglob('*')) if cache.exists() else []) == before
