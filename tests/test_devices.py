"""Device rules that a GPU would enforce, checked on the CPU.

- Every tensor a sampler, decoder or training loss creates must live where the model's inputs live. Torch's default
  device is set to `meta` while the model and its inputs stay on the CPU: a tensor made without an explicit device
  lands on `meta` and the first op that mixes it with a CPU tensor fails, as a CPU tensor would on CUDA.
- No forward pass reads a tensor's value on the host (that synchronises a GPU and breaks CUDA-graph capture), and a
  sampler's host reads do not grow with its number of steps (no per-step device→host copies).
- The trainer resumes from checkpoints read on the CPU (an RNG state moved to CUDA cannot be restored).
Run on a CUDA machine with `ELT_DEVICE=cuda make test` for the real thing.
"""
import contextlib

import pytest
import torch
from torch.overrides import TorchFunctionMode

from elt.method.family import as_options, family_names, get_family

SMALL = {'maskgit': dict(patch=7), 'video': dict(n_codes=16, n_fit_clips=50, n_train_clips=40)}   # cheap tokenizers
SIZE = 'elt-T-2x2'
FAMILIES = [f for f in family_names() if f in ('maskgit', 'diffusion', 'video', 'flow')]


class HostReads(TorchFunctionMode):
    "Counts the calls that copy a tensor's value to the host."
    NAMES = {'item', 'tolist', 'cpu', 'numpy', '__bool__', '__int__', '__float__', '__index__'}

    def __init__(self):
        super().__init__(); self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, '__name__', '') in self.NAMES: self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def default_device(device):
    torch.set_default_device(device)
    try: yield
    finally: torch.set_default_device(None)


@pytest.fixture(scope='module', params=FAMILIES)
def family(request):
    fam = get_family(request.param)
    opts = as_options(fam, SMALL.get(fam.name))
    torch.manual_seed(0)
    model = fam.build(SIZE, opts).eval()
    with torch.no_grad():                                  # zero-initialised heads would hide bugs behind constant outputs
        for p in model.parameters(): p.add_(0.02 * torch.randn(p.shape))
    return fam, opts, model, fam.decoder(opts)


LABELS = torch.tensor([0, 3, 9])


def _sample(fam, opts, model, decoder, steps=2, cfg_scale=1.0, seed=0):
    raw = fam.sample(model, LABELS, loops=2, steps=steps, cfg_scale=cfg_scale, generator=torch.Generator('cpu').manual_seed(seed), opts=opts)
    return decoder(raw) if decoder is not None else raw


def test_sampler_and_decoder_create_nothing_on_the_default_device(family):
    fam, opts, model, decoder = family
    with default_device('meta'): out = _sample(fam, opts, model, decoder)
    assert out.device.type == 'cpu' and out.min() >= 0 and out.max() <= 1


def test_same_seed_same_samples(family):
    fam, opts, model, decoder = family
    a, b, c = (_sample(fam, opts, model, decoder, seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_host_reads_do_not_grow_with_steps(family):
    fam, opts, model, decoder = family
    counts = []
    for steps in (2, 6):
        with HostReads() as reads: fam.sample(model, torch.tensor([0, 3, 9]), loops=2, steps=steps, cfg_scale=1.0,
                                              generator=torch.Generator('cpu').manual_seed(0), opts=opts)
        counts.append(len(reads.calls))
    assert counts[0] == counts[1], f"{fam.name}: {counts[0]} host reads for 2 steps, {counts[1]} for 6: some step copies to the host"


def test_training_loss_creates_nothing_on_the_default_device(family):
    from elt.method.ilsd import ILSDConfig
    fam, opts, model, _ = family
    data = fam.data(opts)
    batch = tuple(t[:8] for t in data)
    loss_fn = fam.loss(ILSDConfig(loops_max=2), opts)
    with default_device('meta'):
        loss, logs = loss_fn(model.train(), batch, 0.5, torch.Generator('cpu').manual_seed(0))
        loss.backward()
    model.eval().zero_grad(set_to_none=True)
    assert loss.device.type == 'cpu' and torch.isfinite(loss)


def test_forward_reads_nothing_on_the_host(family):
    "One forward pass of the network, as the sampler calls it, with no host synchronisation (CUDA-graph capturable)."
    fam, opts, model, _ = family
    calls = []
    class Spy(torch.nn.Module):
        def __init__(self): super().__init__(); self.inner = model; self.cfg = model.cfg
        def forward(self, *args, **kw):
            with HostReads() as reads: out = self.inner(*args, **kw)
            calls.extend(reads.calls); return out
        def parameters(self, recurse=True): return model.parameters(recurse)
    fam.sample(Spy(), torch.tensor([0, 3]), loops=2, steps=2, cfg_scale=1.0, generator=torch.Generator().manual_seed(0), opts=opts)
    assert calls == [], f"{fam.name}'s forward reads tensor values on the host: {calls}"


def test_trainer_resumes_from_checkpoints_read_on_the_cpu(tmp_path, monkeypatch):
    "The resume path must map a checkpoint to the CPU (its RNG state must stay a CPU ByteTensor), whatever the device."
    import elt.method.train as train_mod
    from elt.method.train import TrainConfig, run_training
    seen = []
    real = train_mod.load_checkpoint
    monkeypatch.setattr(train_mod, 'load_checkpoint', lambda *a, **kw: seen.append(kw.get('map_location')) or real(*a, **kw))
    fam = get_family('diffusion'); opts = fam.options()
    build, loss = (lambda: fam.build(SIZE, opts)), (lambda c: fam.loss(c, opts))
    data = tuple(t[:64] for t in fam.data(opts))
    cfg = TrainConfig(steps=4, batch_size=4, ckpt_every=2)
    run_training('diffusion', build, loss, data, cfg, run_dir=tmp_path / 'r', show_progress=False)
    _, again = run_training('diffusion', build, loss, data, cfg, run_dir=tmp_path / 'r', show_progress=False)
    assert again.finished and seen == ['cpu']
