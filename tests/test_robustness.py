"""What a hostile new user tries, item by item: stale caches, torn files, empty or wrong-typed input, estimates that
cannot be made. Each test reproduces one fault through the public API and checks the error the user now sees."""
import json, math, os, shutil, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from elt.core import CheckpointError, load_checkpoint, save_checkpoint
from elt.provenance import package_code_hash
from elt.experiments.bookkeeping import save_results
from elt.experiments.reproduce import Recipe, _eval_path, evaluate_loops, sample_grid, train_model
from elt.method.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
RECIPE = Recipe('diffusion', steps=3, batch_size=8, n_samples=10, sample_steps=2, options={'patch': 7})


class Tiny(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__(); self.net = torch.nn.Linear(width, 1)


def tiny_loss(model, batch, progress, g):
    x, y = batch
    loss = ((model.net(x).squeeze(-1) - y) ** 2).mean()
    return loss, {'loss': loss.detach()}


TINY_DATA = (torch.randn(64, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(64))


# 1. Stale results after a code change
def test_1_an_edited_loss_is_called_not_skipped(runs, monkeypatch, capsys):
    import elt.provenance, elt.families.diffusion as diffusion
    first = train_model(RECIPE, '2x2', show_progress=False)
    def edited(*args, **kw): raise RuntimeError('the edited diffusion_loss ran')
    monkeypatch.setattr(diffusion, 'diffusion_loss', edited)
    with pytest.raises(RuntimeError, match='the edited diffusion_loss ran'):
        train_model(RECIPE, '2x2', show_progress=False)
    # the explicit, loud way to reuse what other code made
    monkeypatch.setenv('ELT_REUSE_STALE', '1')
    monkeypatch.setattr(elt.provenance, 'STALE_REUSED', [])
    reused = train_model(RECIPE, '2x2', show_progress=False)
    assert reused.run_dir == first.run_dir
    assert 'STALE MODEL REUSED (ELT_REUSE_STALE=1)' in capsys.readouterr().err
    rec = json.loads(save_results('r', str(runs), {'x': 1}, {}, time.time(), device='cpu').read_text())
    assert rec['stale_reuse'][0]['path'] == str(first.run_dir) and rec['code_hash'] == package_code_hash()


def test_1_an_edited_metric_rescores(runs, monkeypatch):
    import elt.evaluation.metrics as metrics
    t = train_model(RECIPE, '2x2', show_progress=False)
    row, original = evaluate_loops(t, [1], show_progress=False)[0], metrics.class_consistency
    monkeypatch.setattr(metrics, 'class_consistency', lambda images, labels: -1.0)
    assert evaluate_loops(t, [1], show_progress=False)[0]['class_consistency'] == -1.0
    monkeypatch.setattr(metrics, 'class_consistency', original)
    assert evaluate_loops(t, [1], show_progress=False)[0] == row          # the original code finds its own cached row


def test_1_code_hash_follows_file_edits_not_comments(tmp_path):
    "A copy of the package, edited on disk as a student would: a code change moves the hash, a comment does not."
    shutil.copytree(ROOT / 'elt', tmp_path / 'elt', ignore=shutil.ignore_patterns('__pycache__'))
    probe = [sys.executable, '-c', "from elt.provenance import code_hash; print(code_hash('elt.families.diffusion'), code_hash('elt.families.maskgit'))"]
    run = lambda: subprocess.run(probe, cwd=tmp_path, env={**os.environ, 'PYTHONPATH': str(tmp_path)}, capture_output=True,
                                 text=True, check=True).stdout.split()
    before = run()
    path = tmp_path / 'elt' / 'families' / 'diffusion.py'
    path.write_text(path.read_text().replace('    images, labels = batch\n', '    images, labels = batch   # a comment\n', 1))
    assert run() == before
    path.write_text(path.read_text().replace('T_MIN, T_MAX = 1e-4, 1 - 1e-4', 'T_MIN, T_MAX = 1e-3, 1 - 1e-3', 1))
    after = run()
    assert after[0] != before[0] and after[1] == before[1]                 # diffusion's runs retrain, maskgit's do not


# 2. A torn line or file never blocks a rerun, and every error names its file
def test_2_torn_log_line_and_killed_checkpoint_write(tmp_path):
    cfg = TrainConfig(steps=20, batch_size=8, warmup=2, ckpt_every=5, log_every=1)
    torch.manual_seed(0); train(Tiny(), tiny_loss, TINY_DATA, cfg, tmp_path, show_progress=False, interrupt_after=12)
    with open(tmp_path / 'log.jsonl', 'a') as f: f.write('{"step": 13, "lo')
    dead = subprocess.Popen(['true']); dead.wait()
    (tmp_path / f'last.pt.{dead.pid}.tmp').write_bytes(b'half')
    torch.manual_seed(1); r = train(Tiny(), tiny_loss, TINY_DATA, cfg, tmp_path, show_progress=False)
    steps = [json.loads(l)['step'] for l in (tmp_path / 'log.jsonl').read_text().splitlines()]
    assert (r.step, steps, list(tmp_path.glob('*.tmp'))) == (20, list(range(1, 21)), [])


def test_2_torn_evaluation_cache_is_recomputed_and_named(runs, capsys):
    t = train_model(RECIPE, '2x2', show_progress=False)
    row = evaluate_loops(t, [2], show_progress=False)[0]
    js = _eval_path(t, 2, None, 0, RECIPE.sample_steps).with_suffix('.json')
    js.write_text(js.read_text()[:15])
    again = evaluate_loops(t, [2], show_progress=False)[0]
    assert {k: v for k, v in again.items() if k != 'sample_seconds'} == {k: v for k, v in row.items() if k != 'sample_seconds'}
    assert f'ignoring the unreadable cached evaluation {js}' in capsys.readouterr().err
    grid = js.with_suffix('.grid.pt'); grid.write_bytes(grid.read_bytes()[:40])
    with pytest.raises(RuntimeError, match=f'{grid} is unreadable'):
        sample_grid(t, 2)


# 3. --only with no names, and figures/ never half-overwritten
def test_3_only_without_names_is_refused():
    res = subprocess.run([sys.executable, '-m', 'elt.experiments.run', '--only'], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode != 0 and '--only needs experiment names' in res.stderr


def test_3_a_failing_figure_write_leaves_the_old_files(tmp_path):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig = plt.figure(); save_results('e', str(tmp_path), {'v': 1}, {}, time.time(), fig, device='cpu')
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    class Broken:
        def savefig(self, *a, **k): Path(a[0]).write_bytes(b'half a png'); raise OSError('disk full')
    with pytest.raises(OSError, match='disk full'):
        save_results('e', str(tmp_path), {'v': 2}, {}, time.time(), Broken(), device='cpu')
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old


# 4. An unsafe checkpoint is refused as such, with torch's reason whole
class Payload:
    def __reduce__(self): return (print, ('this must never run',))


def test_4_pickled_code_is_refused_and_said_so(tmp_path, capsys):
    torch.save({'cfg': {}, 'model': {}, 'x': Payload()}, tmp_path / 'evil.pt')
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / 'evil.pt')
    msg = str(e.value)
    assert 'was refused: it holds pickled Python objects' in msg and 'nothing in the file was executed' in msg
    assert 'trust the source' in msg and 'WeightsUnpickler error' in msg           # torch's explanation, not cut
    assert 'this must never run' not in capsys.readouterr().out


# 5. Training configuration, empty data, another model's weights
@pytest.mark.parametrize('kw, message', [
    (dict(steps=2.5), 'TrainConfig.steps counts something and must be an int, got 2.5'),
    (dict(lr=float('inf')), 'TrainConfig.lr must be a finite number, got inf'),
    (dict(lr=0), 'lr must be > 0'),
    (dict(batch_size=0), 'batch_size must be ≥ 1'),
    (dict(ema=1.0), 'ema must be in [0, 1)'),
])
def test_5_train_config_is_validated(kw, message):
    with pytest.raises((TypeError, ValueError), match=message.replace('[', r'\[').replace(')', r'\)')):
        TrainConfig(**kw)


def test_5_empty_data_and_foreign_weights(tmp_path):
    with pytest.raises(ValueError, match='the training data is empty'):
        train(Tiny(), tiny_loss, (TINY_DATA[0][:0], TINY_DATA[1][:0]), TrainConfig(steps=2), show_progress=False)
    save_checkpoint(tmp_path / 'a.pt', Tiny(4), {'width': 4})
    with pytest.raises(CheckpointError, match=r'another model than this Tiny: other shapes: net.weight \(1, 4\) \(the model has \(1, 8\)\)'):
        load_checkpoint(tmp_path / 'a.pt', model=Tiny(8))


# 6. Sampling arguments
def _samplers():
    from elt.families.diffusion import DiT, DiTConfig, diffusion_sample
    from elt.families.flow import flow_sample
    from elt.families.maskgit import MaskGIT, MaskGITConfig, maskgit_sample
    dit, mg = DiT(DiTConfig.from_name('elt-T-2x2', patch=7)).eval(), MaskGIT(MaskGITConfig.from_name('elt-T-2x2', vocab_size=16, n_tokens=16)).eval()
    return {'diffusion': lambda **kw: diffusion_sample(dit, dit.cfg, **{'steps': 2, **kw}),
            'flow': lambda **kw: flow_sample(dit, dit.cfg, **{'steps': 2, **kw}),
            'maskgit': lambda **kw: maskgit_sample(mg, mg.cfg, **{'steps': 2, **kw})}


@pytest.mark.parametrize('family', ['diffusion', 'flow', 'maskgit'])
@pytest.mark.parametrize('kw, message', [
    (dict(labels=[1, 2], cfg_scale=math.inf), 'cfg_scale must be a finite number ≥ 0'),
    (dict(labels=[1.0, 2.0]), 'labels must be integer class ids, got dtype torch.float32'),
    (dict(labels=torch.tensor([True, False])), 'labels must be integer class ids, got dtype torch.bool'),
    (dict(labels=[]), 'labels is empty'),
    (dict(labels=torch.tensor([], dtype=torch.long)), 'labels is empty'),
    (dict(labels=[1], loops=1, loop_schedule=[2, 2]), 'pass loops (one count for every step) or loop_schedule'),
])
def test_6_sampler_arguments(family, kw, message):
    with pytest.raises((TypeError, ValueError)) as e:
        _samplers()[family](**kw)
    assert message in str(e.value)


@pytest.mark.parametrize('shift', [0, -1.0])
def test_6_diffusion_shift(shift):
    from elt.families.diffusion import DiT, DiTConfig, diffusion_sample
    dit = DiT(DiTConfig.from_name('elt-T-2x2', patch=7)).eval()
    with pytest.raises(ValueError, match='shift must be a finite number > 0'):
        diffusion_sample(dit, dit.cfg, [1, 2], steps=2, shift=shift)


# 7. Metrics that looked valid but were not
def test_7_metrics_refuse_or_flag_what_cannot_be_estimated():
    from elt.data import fashion_mnist
    from elt.evaluation.metrics import evaluate
    x, y = fashion_mnist('train')
    few = evaluate(x[:10], y[:10], prc=False)
    assert few['IS-FMNIST'] is None and 'not estimated' in few['IS-FMNIST-note']
    for n_ref, message in [(0, 'n_reference must be None'), (5, 'n_reference=5 is smaller than the 10 samples')]:
        with pytest.raises(ValueError, match=message):
            evaluate(x[:10], n_reference=n_ref, prc=False)
    with pytest.raises(ValueError, match=r'class ids must be in 0\.\.9, got \[5, 6, 7, 8, 9, 10, 11'):
        evaluate(x[:10], torch.arange(10) + 5, prc=False)


# 8. Papermill parameters of the wrong type
@pytest.mark.parametrize('notebook, params, message', [
    ('data_overview', {'n_per_class': '3'}, "parameter 'n_per_class' must be an int, got '3' (str)"),
    ('anytime', {'seeds': 0}, "parameter 'seeds' must be a list of ints, got 0 (int)"),
    ('anytime', {'seeds': '[0]'}, "parameter 'seeds' must be a list of ints, got '[0]' (str)"),
])
def test_8_papermill_parameter_types(tmp_path, notebook, params, message):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    with pytest.raises(PapermillExecutionError) as e:
        pm.execute_notebook(ROOT / 'nbs' / 'experiments' / f'{notebook}.ipynb', tmp_path / 'out.ipynb',
                            parameters={**params, 'out_dir': str(tmp_path)}, kernel_name='python3', cwd=str(ROOT), progress_bar=False)
    assert message in str(e.value) and '-y' in str(e.value)
    assert not list(tmp_path.glob('*.json'))


# 9. An unknown kernel: the kernel's error, not a pointer to an empty notebook
def test_9_unknown_kernel_is_reported():
    res = subprocess.run([sys.executable, '-m', 'elt.experiments.run', '--profile', 'smoke', '--only', 'data_overview',
                          '--kernel', 'nosuch'], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode != 0
    assert "no Jupyter kernel named 'nosuch'; the kernels here are [" in res.stderr
    assert 'executed notebook' not in res.stderr
