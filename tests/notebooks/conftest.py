"""The Jupyter kernel the notebook tests run their notebooks in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_KERNEL = "fhirlake-notebook-tests"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernel spec for the interpreter running the tests (never another Python on the machine)."""
    from ipykernel.kernelspec import write_kernel_spec

    folder = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(folder / "kernels" / _KERNEL)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_PLATFORM_DIRS")}
    os.environ["JUPYTER_PATH"] = str(folder)
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    try:
        yield _KERNEL
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
