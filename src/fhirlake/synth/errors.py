"""Errors raised by :mod:`fhirlake.synth`.

::

    FhirlakeError
    └── SynthError                 generation could not run
        ├── SynthOptionError       an option is out of range (patients < 1, unknown locale, ...)
        └── OutputDirectoryError   the output folder cannot be used (not empty, not writable)
"""

from __future__ import annotations

from fhirlake.errors import FhirlakeError

__all__ = ["OutputDirectoryError", "SynthError", "SynthOptionError"]


class SynthError(FhirlakeError):
    """Root of the errors of the synthetic data generator."""


class SynthOptionError(SynthError):
    """An option given to the generator is invalid; the message names the option."""


class OutputDirectoryError(SynthError):
    """The output folder cannot be written (it holds other files, or the OS refused)."""
