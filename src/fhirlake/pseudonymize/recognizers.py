"""Presidio recognizers fhirlake adds in code, because a regular expression is not enough.

Presidio ships no French recognizer. The NIR (numéro d'inscription au répertoire, the
"numéro de sécurité sociale", which is also the INS used in care since 2021) is 13 characters
plus a 2-digit key: 97 minus the number modulo 97, with Corsica's 2A/2B read as 19/18. Checking
the key keeps phone numbers and amounts from being taken for NIRs.

>>> nir_key_is_valid("1 61 04 75 123 456 70")
False
>>> nir_key_is_valid("2 84 05 2A 012 345 " + f"{97 - int('2840519012345') % 97:02d}")
True
"""

from __future__ import annotations

from presidio_analyzer import Pattern, PatternRecognizer

__all__ = ["FrNirRecognizer", "nir_key_is_valid"]

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


class FrNirRecognizer(PatternRecognizer):
    """Finds French NIR/INS numbers whose key checks out (entity ``FR_NIR``)."""

    def __init__(self, supported_language: str = "fr") -> None:
        super().__init__(
            supported_entity="FR_NIR",
            supported_language=supported_language,
            name=f"FrNirRecognizer_{supported_language}",
            patterns=[Pattern("NIR", NIR_PATTERN, 0.5)],
            context=["nir", "ins", "sécurité", "sociale", "insee", "vitale"],
        )

    def validate_result(self, pattern_text: str) -> bool:
        """A match counts only if its key is right (the score then becomes 1.0)."""
        return nir_key_is_valid(pattern_text)
