"""The French NIR (numéro d'inscription au répertoire), as used for the INS.

A NIR is 13 characters and a 2-digit key: sex (1 male, 2 female), year and month of birth
(2 digits each), the INSEE code of the birth commune (5 characters: département and commune;
Corsica's départements are ``2A`` and ``2B``), a 3-digit birth order in that commune and
month, then ``key = 97 - (number mod 97)``, where ``2A`` counts as 19 and ``2B`` as 18.
"""

from __future__ import annotations

import random
from datetime import date

__all__ = ["format_nir", "make_nir", "nir_is_valid", "nir_key"]


def _numeric(body: str) -> int:
    return int(body.replace("2A", "19").replace("2B", "18"))


def nir_key(body: str) -> str:
    """The 2-digit key of a 13-character NIR body.

    >>> nir_key("2690549588157")
    '80'
    """
    if len(body) != 13:
        raise ValueError("a NIR body has 13 characters")
    return f"{97 - _numeric(body) % 97:02d}"


def make_nir(rng: random.Random, sex: str, birth: date, birth_insee: str) -> str:
    """A 15-character NIR with a valid key for someone born on ``birth`` in ``birth_insee``."""
    body = f"{1 if sex == 'male' else 2}{birth.year % 100:02d}{birth.month:02d}{birth_insee}{rng.randint(1, 999):03d}"
    return body + nir_key(body)


def nir_is_valid(nir: str) -> bool:
    """Whether ``nir`` has 15 characters and the right key."""
    return len(nir) == 15 and nir[13:].isdigit() and nir_key(nir[:13]) == nir[13:]


def format_nir(nir: str) -> str:
    """The usual printed form: ``2 69 05 49 588 157 80``."""
    return f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
