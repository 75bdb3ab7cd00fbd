"""The trainer under torchrun: two CPU processes (gloo) at a global batch give the single-process run's loss curve and
weights, and a family's model trains through the command line on two processes."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = textwrap.dedent('''
    import sys, torch, torch.nn as nn
    from elt.method.train import TrainConfig, train
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__(); self.net = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Linear(16, 1))
        def forward(self, x): return self.net(x).squeeze(-1)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 4, generator=g); Y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    def loss_fn(model, batch, progress, generator):
        x, y = batch
        loss = ((model(x) - y) ** 2).mean()
        return loss, {'loss': loss.detach()}
    torch.manual_seed(0)
    cfg = TrainConfig(steps=60, batch_size=32, lr=3e-2, warmup=3, log_every=1, ckpt_every=20, bf16=False)
    train(Tiny(), loss_fn, (X, Y), cfg, run_dir=sys.argv[1], device='cpu', show_progress=False)
''')


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    return {**env, 'ELT_DEVICE': 'cpu', 'OMP_NUM_THREADS': '1'}


def _torchrun(*args, runs=None):
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', *args],
                          cwd=ROOT, env={**_env(), **({'ELT_RUNS': str(runs)} if runs else {})}, capture_output=True, text=True,
                          timeout=300)


def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / 'tiny.py'; script.write_text(SCRIPT)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / 'one')], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun(str(script), str(tmp_path / 'two'))
    assert two.returncode == 0, two.stderr[-3000:]
    curve = lambda run: [json.loads(l)['loss'] for l in (tmp_path / run / 'log.jsonl').read_text().splitlines()]
    assert len(curve('two')) == 60
    assert curve('two') == pytest.approx(curve('one'), rel=1e-4, abs=1e-6)
    assert curve('one')[-1] < curve('one')[0] / 10                       # it learned, so the comparison means something
    w1 = torch.load(tmp_path / 'one' / 'last.pt', weights_only=True)['model']
    w2 = torch.load(tmp_path / 'two' / 'last.pt', weights_only=True)['model']
    for k in w1: torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


def test_a_family_trains_under_torchrun(tmp_path):
    recipe = json.dumps(dict(width='T', depth=4, steps=4, batch_size=8, patch=7, bf16=False))
    res = _torchrun('-m', 'elt.experiments.reproduce', '--family', 'diffusion', '--split', '2x2', '--recipe', recipe, runs=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out['steps'] == 4 and Path(out['run_dir']).parent == tmp_path
    assert torch.load(Path(out['run_dir']) / 'last.pt', weights_only=True)['step'] == 4


def test_batch_must_split_over_processes(tmp_path):
    recipe = json.dumps(dict(width='T', depth=4, steps=2, batch_size=7, patch=7))
    res = _torchrun('-m', 'elt.experiments.reproduce', '--family', 'diffusion', '--split', '2x2', '--recipe', recipe, runs=tmp_path)
    assert res.returncode != 0 and 'batch_size 7 does not split evenly over 2 processes' in res.stderr


def test_train_models_in_a_process_pool(tmp_path, monkeypatch):
    "The parallel zoo (a concurrent.futures process pool) trains each distinct model once, to the weights one process gives."
    from elt.experiments.reproduce import Recipe, train_models
    rec = Recipe.of('diffusion', dict(width='T', depth=4, steps=3, batch_size=8, patch=7))
    monkeypatch.setenv('ELT_RUNS', str(tmp_path / 'pool'))
    pooled = train_models([(rec, '2x2', 'ilsd', 0), (rec, '4x1', 'ilsd', 0), (rec, '2x2', 'ilsd', 0)], workers=2)
    monkeypatch.setenv('ELT_RUNS', str(tmp_path / 'one'))
    alone = train_models([(rec, '2x2', 'ilsd', 0), (rec, '4x1', 'vanilla', 0)], workers=1)
    assert pooled[0].run_dir == pooled[2].run_dir and pooled[1].mode == 'vanilla'
    assert [t.run_dir.name for t in pooled[:2]] == [t.run_dir.name for t in alone]
    assert len(list((tmp_path / 'pool').iterdir())) == 2
    for a, b in zip(pooled, alone):
        for k, v in a.model.state_dict().items(): torch.testing.assert_close(v, b.model.state_dict()[k], rtol=1e-4, atol=1e-5)
