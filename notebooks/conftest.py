"""nbval runs the example notebooks here: give their kernels a fresh store so version numbers start at v1.

Only those kernels: nbval starts a notebook's kernel while setting up its first cell, so the store is
named in the environment for the setup of items in this folder and taken out again after each one
(a kernel keeps the environment it started with). Set at import time, it leaked into every other
kernel and server the test session started."""

import os
import tempfile

import pytest

_STORE = os.path.join(tempfile.mkdtemp(prefix="jupyter_mv_nbval_"), ".jupyter_mv")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    os.environ["JUPYTER_MV_STORE"] = _STORE


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    os.environ.pop("JUPYTER_MV_STORE", None)
