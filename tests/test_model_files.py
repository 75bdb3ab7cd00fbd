"""One model, one file: `load_model` rebuilds a masked, a diffusion and a video model — network, decoder, family, options —
from its file alone (no dataset, no tokenizer cache, no run folder), in a fresh process, and draws the same samples."""
import os, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

from elt.method.family import load_model, save_model, train_family
from elt.method.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    'maskgit': ('elt-T-2x2', {'patch': 7, 'n_codes': 64}),
    'diffusion': ('elt-T-2x2', {'patch': 7}),
    'video': ('elt-T-1x4', {'n_codes': 16, 'n_fit_clips': 50, 'n_train_clips': 40, 'patch': 16}),
}
DRAW = "torch.arange(3), 2, 2, generator=torch.Generator().manual_seed(0)"


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp('models')
    expected = {}
    for family, (size, opts) in MODELS.items():
        model, _ = train_family(family, size, TrainConfig(steps=3, batch_size=4), opts=opts, run_dir=d / f'run-{family}',
                                show_progress=False)
        save_model(d / f'{family}.pt', model, seed=0)
        expected[family] = eval(f'model.sample({DRAW})')
    torch.save(expected, d / 'expected.pt')
    return d


def test_load_model_rebuilds_every_family_from_its_file_alone(model_files, tmp_path):
    empty = tmp_path / 'nothing-here'; empty.mkdir()
    code = f"""
        import torch
        from elt.method.family import load_model
        expected = torch.load({str(model_files / 'expected.pt')!r}, weights_only=True)
        for family in {list(MODELS)!r}:
            model = load_model({str(model_files)!r} + f'/{{family}}.pt')
            out = model.sample({DRAW})
            assert torch.equal(out, expected[family]), family
            print(family, model.size, type(model.net).__name__, type(model.decoder).__name__, tuple(out.shape))
    """
    env = {**os.environ, 'ELT_DATA': str(empty), 'ELT_RUNS': str(empty)}          # no dataset, no tokenizer cache, no runs
    res = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.splitlines() == ['maskgit elt-T-2x2 MaskGIT PatchTokenizer (3, 28, 28)',
                                       'diffusion elt-T-2x2 DiT NoneType (3, 1, 28, 28)',
                                       'video elt-T-1x4 MaskGIT ClipDecoder (3, 8, 32, 32)']
    assert list(empty.iterdir()) == []                                                 # and nothing was written there


def test_to_device_moves_the_decoder_with_the_network(model_files):
    model = load_model(model_files / 'maskgit.pt', device='cpu')
    moved = model.to(torch.float64)                       # one .to() reaches the codebook: it is part of the model
    assert moved.decoder.codebook.dtype == torch.float64 and next(moved.net.parameters()).dtype == torch.float64
