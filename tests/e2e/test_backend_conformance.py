"""The storage contract suite (tests/storage/backend_conformance_test.cpp) against the object stores:
S3 on versitygw and GCS on fake-gcs-server, started here on loopback. The unit run covers the local and
memory backends; this run adds the two that need a peer, through the same C++ tests."""
import os
import subprocess
from pathlib import Path

import pytest

import peers
from conftest import ROOT

UNIT_TESTS = Path(os.environ.get("LIFEBOAT_UNIT_TESTS", ROOT / "build" / "unit_tests"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    with peers.VersityGW(tmp_path_factory.mktemp("versitygw")) as gw, peers.FakeGCS() as gcs:
        yield gw, gcs


def test_every_backend_passes_the_storage_contract(stores):
    gw, gcs = stores
    assert UNIT_TESTS.exists(), f"build the unit tests first ({UNIT_TESTS})"
    env = dict(os.environ, **gw.env(), **gcs.env(), LIFEBOAT_RETRY_BASE_MS="5",
               LIFEBOAT_TEST_S3_URL=f"s3:{gw.endpoint}/conformance", LIFEBOAT_TEST_GCS_URL="gs:conformance")
    p = subprocess.run([str(UNIT_TESTS), "--gtest_filter=Every/BackendConformance.*"], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    # Each backend ran every test of the suite: none was skipped for want of a peer.
    for backend in ("local", "memory", "s3", "gcs"):
        ran = [l for l in p.stdout.splitlines() if l.startswith("[       OK ]") and l.split(" (")[0].endswith("/" + backend)]
        assert len(ran) >= 9, (backend, len(ran), p.stdout[-2000:])
