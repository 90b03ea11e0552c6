"""The check of the French NIR, which a regular expression alone cannot do.

The NIR (numéro d'inscription au répertoire, the
"numéro de sécurité sociale", which is also the INS used in care since 2021) is 13 characters
plus a 2-digit key: 97 minus the number modulo 97, with Corsica's 2A/2B read as 19/18. Checking
the key keeps phone numbers and amounts from being taken for NIRs.

>>> nir_key_is_valid("1 61 04 75 123 456 70")
False
>>> nir_key_is_valid("2 84 05 2A 012 345 " + f"{97 - int('2840519012345') % 97:02d}")
True
"""

from __future__ import annotations

__all__ = ["NIR_PATTERN", "nir_key_is_valid"]

NIR_PATTERN = (
    r"\b[1-478]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}\s?\d{2}\b"
)


def nir_key_is_valid(text: str) -> bool:
    """Whether a 15-character NIR (spaces allowed) has the right mod-97 key."""
    compact = "".join(text.split()).upper()
    if len(compact) != 15:
        return False
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    key = compact[13:]
    return body.isdigit() and key.isdigit() and 97 - int(body) % 97 == int(key)
