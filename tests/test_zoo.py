"""The shipped reference zoo (data/zoo/): every model still computes what its manifest says — a model-code change that
alters it fails here with "retrain with `make zoo`" — its files are the ones the manifests name, it stays small, and a
certificate that calls today's training code equal to the zoo's (`make certify`) still replays its training logs."""
from pathlib import Path

import pytest

from elt.experiments.zoo import CERTIFICATES, certificate, manifests, replay, verify
from elt.method.family import get_family

ZOO = Path(__file__).resolve().parent.parent / 'data' / 'zoo'
MANIFESTS = manifests(ZOO)


def test_every_weights_file_has_its_manifest_and_back():
    weights = sorted(p.name for p in ZOO.glob('*.pt')) if ZOO.is_dir() else []
    assert weights == sorted(m['weights'] for m in MANIFESTS)


def test_the_shipped_weights_stay_within_60_mb():
    assert sum(m['weights_bytes'] for m in MANIFESTS) <= 60e6


@pytest.mark.parametrize('manifest', MANIFESTS, ids=[m['name'] for m in MANIFESTS])
def test_a_shipped_model_computes_what_its_manifest_says(manifest):
    verify(manifest, ZOO)


CERTIFIED = sorted(p.stem for p in (ZOO / CERTIFICATES).glob('*.json'))


@pytest.mark.parametrize('family', CERTIFIED)
def test_a_certificate_still_holds_for_todays_training_code(family):
    """A certificate names the training code that replayed the zoo's first steps exactly; today's code must still do so (or the
    certificate is stale: the claims page then names the weights as older code's, and `make certify` replays again)."""
    c = certificate(family, ZOO)
    if c['training_code'] != get_family(family).training_code():
        pytest.skip(f"the certificate is for training code {c['training_code']}, not today's: it certifies nothing now")
    held = {m['name']: m for m in MANIFESTS}
    for run in c['replays']:
        again = replay(held[run['model']], run['steps'])
        assert again['ok'], f"{run['model']}: {again['where']} moved by {again['worst_rel']:.3g}: run `make certify`, or `make zoo`"
