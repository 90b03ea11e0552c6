"""Identifying strings found by their shape, in English and French text.

NER finds names and places it has seen the like of; it does not find an insurance number, a
phone number or an e-mail reliably, and it finds them slowly. These compiled patterns do, in
one pass each:

* ``EMAIL_ADDRESS``, ``URL``, ``IP_ADDRESS``;
* ``PHONE_NUMBER``: French (``06 12 34 56 78``, ``+33 (0)1 41 63 60 83``) and North American
  (``(591)341-7776``, ``+1-780-563-6083x7783``) numbers, and international ones;
* ``FR_NIR``: the French NIR/INS whose mod-97 key checks out (spaces allowed);
* ``US_SSN``;
* ``IDENTIFIER``: any token with six or more digits (``ABC-123456789``), and any number that
  follows a label (``IPP``, ``NDA``, ``MRN``, ``n°``, ``policy``, ``member id``…);
* ``LOCATION``: a street address (``12 rue des Glycines``, ``5634 Jon Stream Apt. 960``),
  a French postal code and city (``69003 Lyon``), a US city, state and ZIP;
* ``PERSON``: the name after a title (``Dr``, ``Pr``, ``Mme``, ``M.``, ``Mrs``…), an initial
  and a surname (``J. Davies-Barnett``), and a name its context gives away (after "verified
  by", "social worker:", "son époux", before ", infirmière" or a phone number, under a
  closing "Cordialement,");
* ``AGE``: an age above the policy's maximum (written back as ``90+``).

>>> text = "IPP 12345, tél 06 12 34 56 78"
>>> sorted((text[s:e], kind) for s, e, kind in find_patterns(text))
[('06 12 34 56 78', 'PHONE_NUMBER'), ('12345', 'IDENTIFIER')]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fhirlake.pseudonymize.recognizers import nir_key_is_valid

__all__ = ["AGE_PATTERN", "find_patterns"]

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    # French: 0X XX XX XX XX, +33 X XX XX XX XX, +33 (0)X XX XX XX XX, 0XXXXXXXXX
    r"(?:(?:\+|00)33\s?(?:\(0\)\s?)?|0)[1-9](?:[\s.-]?\d{2}){4}"
    # North American: (555) 123-4567, 555.123.4567, +1-555-123-4567x123, 001-555-123-4567
    r"|(?:(?:\+1|001|1)[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"
    r"(?:\s?(?:x|ext\.?|poste)\s?\d{1,6})?"
    # other international numbers
    r"|\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}"
    r")(?![\w])",
    re.IGNORECASE,
)
_NIR = re.compile(
    r"(?<!\d)[1-478]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}"
    r"\s?\d{2}(?!\d)"
)
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
# A token that holds six digits or more, letters and separators allowed: ABC-123456789
_LONG_ID = re.compile(r"(?<![\w-])(?=(?:[A-Za-z/_.-]*\d){6})[A-Za-z0-9](?:[\w/.-]*[A-Za-z0-9])?")
_LABEL = (
    r"(?:n°|n[ºo]\.?|num(?:éro|ero)?\.?|ipp|nda|nip|ins|nir|mrn|ssn|rpps|adeli|finess|"
    r"dossier|s[ée]jour|contrat|adh[ée]rent|police|policy(?:\s+(?:number|no\.?|#))?|"
    r"member(?:\s+id)?|subscriber(?:\s+id)?|patient\s+id|account(?:\s+(?:number|no\.?))?|"
    r"insurance(?:\s+(?:number|no\.?|id))?|s[ée]curit[ée]\s+sociale|medical\s+record(?:\s+number)?|"
    r"record\s+(?:number|no\.?)|chart(?:\s+(?:number|no\.?))?|id)"
)
_LABELLED = re.compile(
    rf"(?<![\w]){_LABEL}(?:\b|(?<=°))\s*(?:[:#=]|\bis\b|\best\b)?\s*(?P<value>[A-Za-z]{{0,4}}[-/]?\d[\w/-]*(?:\s\d{{2,}})*)",
    re.IGNORECASE,
)
_STREET_EN = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|"
    r"Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Bypass|"
    r"Crescent|Crossing|Estate|Estates|Expressway|Freeway|Garden|Gardens|Harbor|Heights|"
    r"Hill|Hills|Island|Junction|Key|Knoll|Lake|Lakes|Landing|Light|Lodge|Manor|Meadow|"
    r"Meadows|Mill|Mills|Mission|Mount|Mountain|Orchard|Park|Pass|Path|Pike|Pine|Pines|"
    r"Plains|Plaza|Point|Port|Ports|Prairie|Ramp|Ranch|Rapids|Ridge|River|Row|Run|Shoal|"
    r"Shore|Shores|Spring|Springs|Station|Stream|Summit|Throughway|Trace|Track|Tunnel|"
    r"Turnpike|Union|Valley|Via|View|Views|Village|Villages|Ville|Vista|Walk|Wall|Wells|"
    r"Cape|Causeway|Center|Centers|Club|Common|Corner|Corners|Course|Cove|Creek|Dale|Dam|"
    r"Divide|Extension|Falls|Ferry|Field|Fields|Flat|Flats|Ford|Forest|Forge|Fork|Forks|"
    r"Fort|Glen|Green|Greens|Grove|Haven|Hollow|Inlet|Isle|Keys|Loaf|Locks|Loop|Mall|Neck|"
    r"Oval|Overpass|Radial|Rest|Route|Shoals|Skyway|Spur|Squares|Stravenue|Underpass|Viaduct"
)
_CAP = r"[A-ZÀ-Ý][\w'’.-]*"
_ADDRESS_EN = re.compile(
    rf"(?<![\w.-])\d{{1,6}}\s+(?:{_CAP}\s+){{0,3}}(?:{_STREET_EN})\b\.?"
    r"(?:,?\s+(?:Apt\.?|Suite|Unit|#|Ste\.?)\s*\w+)?"
)
_MILITARY = re.compile(
    r"\b(?:PSC\s+\d{4},\s+Box\s+\d{4}|Unit\s+\d{4}\s+Box\s+\d{4}|(?:USNS|USNV|USS|USCGC)\s+"
    r"[A-Z][a-z]+|[AF]PO\s+A[AEP]\s+\d{5})\b"
)
_CITY_STATE_ZIP = re.compile(
    r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,3},\s+[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"
)
_STREET_FR = (
    r"rue|avenue|av\.|boulevard|bd|chemin|impasse|place|all[ée]e|route|quai|cours|square|"
    r"voie|rond-point|passage|faubourg|sentier|r[ée]sidence|lieu-dit|cit[ée]|hameau|parvis|"
    r"promenade|esplanade|villa|mont[ée]e"
)
_ADDRESS_FR = re.compile(
    rf"(?<![\w-])(?:\d{{1,4}}(?:\s?(?:bis|ter|[AB]))?,?\s+)?(?i:{_STREET_FR})\s+"
    rf"(?:(?:de\s+la|de\s+l['’]|du|des|de|d['’]|la|le|les|l['’])\s*)?{_CAP}"
    rf"(?:[\s-]+(?:(?:de\s+la|de|du|des|d['’]|l['’]|la|le|les|sur|sous|en)\s*)?{_CAP}){{0,4}}"
)
_POSTAL_CITY_FR = re.compile(
    r"(?<![\w-])(?:\d{5}|\d{2}\s\d{3})\s+(?:[A-ZÀ-Ý][a-zà-ÿ'’]+|CEDEX)"
    r"(?:[\s-]+(?:(?:sur|sous|en|les|la|le|de|du|des|l['’]|d['’])[\s-]+)?[A-ZÀ-Ý][a-zà-ÿ'’]+){0,4}"
    r"(?:\s+(?:CEDEX|Cedex)(?:\s+\d{1,2})?)?"
)
_TITLE = re.compile(
    r"(?<![\w.])(?:Dr|Drs|Docteur|Doctor|Doc|Pr|Prof|Professeur|Professor|Mme|Mmes|Madame|M|MM"
    r"|Monsieur|Mr|Mrs|Ms|Miss|Mlle|Mademoiselle|Mx|Me|Maître|Sr|Sister|Nurse|Infirmi[eè]re?)"
    r"\.?[ \t]+"
    r"(?P<name>(?:[A-ZÀ-Ý]\.[ \t]?)*(?:(?:de|du|des|van|von|der|le|la|di|da|del|d['’]|mac|mc|st\.?)[ \t]?)?"
    r"[A-ZÀ-Ý][\w'’]*(?:-[A-ZÀ-Ý][\w'’]*)*"
    r"(?:[ \t]+(?:(?:de|du|des|van|von|der|le|la|di|da|del|d['’])[ \t]?)?[A-ZÀ-Ý][\w'’]*(?:-[A-ZÀ-Ý][\w'’]*)*){0,2})"
)
# A name NER does not know, found by what surrounds it (as Philter does): a word that starts
# with a capital, hyphenated parts allowed; two or three of them make a full name.
_WORD_CAP = r"(?:[A-ZÀ-Ý][a-zà-ÿ'’]+|[A-ZÀ-Ý]{2,})(?:-(?:[A-ZÀ-Ý][a-zà-ÿ'’]+|[A-ZÀ-Ý]{2,}))*"
_PARTICLE = r"(?:(?:de|du|des|van|von|der|le|la|Le|La|di|da|del|d['’])[ \t]?)"
_FULL = rf"{_WORD_CAP}(?:[ \t]+{_PARTICLE}?{_WORD_CAP}){{1,2}}"
_ROLE = (
    r"(?:coordinator|scientist|secretary|nurse|pharmacist|physiotherapist|therapist|technician|"
    r"midwife|registrar|consultant|resident|assistant|social\s+worker|care\s+worker|carer|"
    r"infirmi[eè]re?|kin[ée]sith[ée]rapeute|secr[ée]taire|pharmacien(?:ne)?|sage-femme|"
    r"aide-soignante?|interne|externe|m[ée]decin|psychologue|di[ée]t[ée]ticien(?:ne)?|"
    r"ergoth[ée]rapeute|orthophoniste|assistante?\s+sociale|cadre\s+de\s+sant[ée])"
)
_BEFORE_NAME = (
    r"(?:(?:verified|taken|seen|reviewed|signed|dictated|written|reported|discussed|called|"
    r"checked|authori[sz]ed|approved|validated|referred|prescribed)\s+by|"
    r"(?:vu|vue|valid[ée]e?|sign[ée]e?|dict[ée]e?|r[ée]dig[ée]e?|appel[ée]e?|pr[ée]lev[ée]e?|"
    r"prescrit|adress[ée]e?)\s+par|social\s+worker|"
    r"(?:husband|wife|son|daughter|brother|sister|mother|father|partner|niece|nephew|"
    r"neighbour|neighbor|friend|carer|guardian|mari|[ée]pou(?:x|se)|conjointe?|fils|fille|"
    r"fr[èe]re|s[œo]e?ur|m[èe]re|p[èe]re|ni[èe]ce|neveu|voisine?|ami|amie|compagne?|"
    r"tuteur|tutrice|aidant|aidante|personne\s+de\s+confiance))"
)
_CLOSING = (
    r"(?:thanks|thank\s+you|regards|best\s+regards|kind\s+regards|sincerely|yours\s+sincerely|"
    r"yours|cordialement|bien\s+cordialement|confraternellement|bien\s+[àa]\s+vous|"
    r"amiti[ée]s|salutations)"
)
_NAMES_IN_CONTEXT = [
    # J. Dupont, A. Le Roux, J.-M. DURAND
    re.compile(rf"(?<![\w.])(?P<name>[A-ZÀ-Ý]\.(?:-?[A-ZÀ-Ý]\.)?[ \t]?{_PARTICLE}?{_WORD_CAP})"),
    # verified by Ashleigh Evans; social worker: Erin Wilson; son époux (Jean Martin)
    re.compile(rf"\b(?i:{_BEFORE_NAME})[ \t]*[:,(]?[ \t]*(?P<name>{_FULL})"),
    # Assistante sociale : Rémy-Franck Roche; Pharmacist: Jo Bell
    re.compile(rf"\b(?i:{_ROLE})[ \t]*:[ \t]*(?P<name>{_FULL})"),
    # Darrell Bell, clinic coordinator; Aimée-Susanne Leduc, infirmière
    re.compile(rf"(?P<name>{_FULL}),[ \t]+(?:[\w-]+[ \t]+)?(?i:{_ROLE})\b"),
    # (Chantal Paris, +33 (0)6 63 00 51 06); (Marine Étienne, 0673972751)
    re.compile(rf"(?P<name>{_FULL}),?[ \t]+(?=\+\d|0\d)"),
    # Thanks,\nMary / Bien cordialement,\nNicole Raynaud
    re.compile(
        rf"\b(?i:{_CLOSING})[ \t]*[,.!]?[ \t]*\n[ \t]*(?P<name>{_WORD_CAP}(?:[ \t]+{_PARTICLE}?{_WORD_CAP}){{0,2}})"
    ),
]
_UK_POSTCODE = re.compile(
    r"(?:\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}[ \t]+)?\b[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}\b"
)
AGE_PATTERN = re.compile(
    r"(?<![\d.,])(?P<age>\d{2,3})(?P<unit>\s*-?\s*(?:years?|yrs?|y/?o|ans?)\b(?:[\s-]*old)?)",
    re.IGNORECASE,
)
# What a title is followed by that is not a name
_NOT_NAMES = frozenset({"Le", "La", "Les", "Un", "Une", "The", "A", "An", "De", "Du"})


def _titled(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _TITLE.finditer(text):
        name = m.group("name")
        if name.split()[0] in _NOT_NAMES or len(name) < 2:
            continue
        yield m.start("name"), m.end("name"), "PERSON"


def _named_in_context(text: str) -> Iterator[tuple[int, int, str]]:
    for pattern in _NAMES_IN_CONTEXT:
        for m in pattern.finditer(text):
            name = m.group("name")
            if name.split()[0] not in _NOT_NAMES:
                yield m.start("name"), m.end("name"), "PERSON"


def find_patterns(text: str) -> list[tuple[int, int, str]]:
    """Every identifying string found by shape: (start, end, entity type), unsorted."""
    found: list[tuple[int, int, str]] = []
    has_digit = any(c.isdigit() for c in text)
    if "@" in text:
        found.extend((m.start(), m.end(), "EMAIL_ADDRESS") for m in _EMAIL.finditer(text))
    if "http" in text or "www" in text:
        found.extend((m.start(), m.end(), "URL") for m in _URL.finditer(text))
    if has_digit:
        found.extend((m.start(), m.end(), "IP_ADDRESS") for m in _IP.finditer(text))
        found.extend((m.start(), m.end(), "PHONE_NUMBER") for m in _PHONE.finditer(text))
        found.extend(
            (m.start(), m.end(), "FR_NIR")
            for m in _NIR.finditer(text)
            if nir_key_is_valid(m.group())
        )
        found.extend((m.start(), m.end(), "US_SSN") for m in _SSN.finditer(text))
        found.extend((m.start(), m.end(), "IDENTIFIER") for m in _LONG_ID.finditer(text))
        found.extend(
            (m.start("value"), m.end("value"), "IDENTIFIER")
            for m in _LABELLED.finditer(text)
            if sum(c.isdigit() for c in m.group("value")) >= 3
        )
        found.extend((m.start(), m.end(), "LOCATION") for m in _ADDRESS_EN.finditer(text))
        found.extend((m.start(), m.end(), "LOCATION") for m in _MILITARY.finditer(text))
        found.extend((m.start(), m.end(), "LOCATION") for m in _CITY_STATE_ZIP.finditer(text))
        found.extend((m.start(), m.end(), "LOCATION") for m in _POSTAL_CITY_FR.finditer(text))
        found.extend((m.start(), m.end(), "LOCATION") for m in _UK_POSTCODE.finditer(text))
    found.extend((m.start(), m.end(), "LOCATION") for m in _ADDRESS_FR.finditer(text))
    found.extend(_titled(text))
    found.extend(_named_in_context(text))
    return found
