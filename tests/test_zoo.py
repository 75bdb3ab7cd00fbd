"""The shipped reference zoo (data/zoo/): every model still computes what its manifest says — a model-code change that
alters it fails here with "retrain with `make zoo`" — its files are the ones the manifests name, and it stays small."""
from pathlib import Path

import pytest

from elt.experiments.zoo import manifests, verify

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
