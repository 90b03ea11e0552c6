"""The ``en`` locale: United States patients, US Core profiles, SSN and MRN, English notes.

Names are common US names chosen so that none is also an everyday English word or a place
in the city table: a name that survives pseudonymisation can then be found by a plain
word search without false alarms. Phone numbers use the 555-01XX lines reserved for fiction
and SSNs the never-issued 9XX area, so no generated identifier belongs to a real person.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from fhirlake.synth.locales import City, Identity, Locale, NoteFacts, PersonCore

__all__ = ["LOCALE"]

_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
MRN_SYSTEM = "https://fhirlake.example.org/fhir/sid/mrn"

GIVEN_MALE = (
    "James", "Robert", "John", "Michael", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Christopher", "Daniel", "Matthew", "Anthony", "Donald", "Steven", "Paul", "Andrew",
    "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward", "Jason",
    "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry",
    "Justin", "Brandon", "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Raymond",
    "Dennis", "Jerry", "Tyler", "Aaron", "Jose", "Nathan", "Henry", "Zachary", "Douglas",
    "Peter", "Kyle", "Noah", "Ethan", "Jeremy", "Walter", "Keith", "Roger", "Sean",
    "Gerald", "Carl", "Harold", "Dylan", "Arthur", "Lawrence", "Jesse", "Bryan", "Bruce",
    "Gabriel", "Logan", "Alan", "Juan", "Albert", "Elijah", "Wayne", "Vincent", "Liam",
    "Lucas", "Aiden", "Carlos", "Luis", "Miguel", "Wei", "Hiroshi", "Rahul", "Omar",
)
GIVEN_FEMALE = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly",
    "Emily", "Donna", "Michelle", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca",
    "Sharon", "Laura", "Cynthia", "Dorothy", "Amy", "Kathleen", "Angela", "Shirley", "Brenda",
    "Emma", "Anna", "Pamela", "Nicole", "Samantha", "Katherine", "Christine", "Helen",
    "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Catherine", "Heather", "Diane", "Olivia",
    "Julie", "Joyce", "Victoria", "Ruth", "Lauren", "Kelly", "Christina", "Joan", "Evelyn",
    "Judith", "Andrea", "Hannah", "Megan", "Cheryl", "Jacqueline", "Martha", "Teresa",
    "Gloria", "Janice", "Kathryn", "Abigail", "Sophia", "Frances", "Alice", "Judy",
    "Isabella", "Julia", "Beverly", "Denise", "Marilyn", "Danielle", "Brittany", "Diana",
    "Natalie", "Chloe", "Priya", "Mei", "Yuki", "Fatima", "Lucia", "Sofia",
)
FAMILY = (
    "Smith", "Johnson", "Williams", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore",
    "Jackson", "Martin", "Perez", "Thompson", "Harris", "Sanchez", "Clark", "Ramirez",
    "Lewis", "Robinson", "Walker", "Allen", "Wright", "Torres", "Nguyen", "Flores", "Adams",
    "Nelson", "Rivera", "Campbell", "Mitchell", "Roberts", "Gomez", "Phillips", "Evans",
    "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Kelley", "Howard", "Ramos", "Richardson", "Watson", "Chavez", "Bennett", "Mendoza",
    "Ruiz", "Hughes", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Foster",
    "Jimenez", "Jenkins", "Russell", "Sullivan", "Coleman", "Butler", "Henderson", "Barnes",
    "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Patterson", "Hamilton", "Graham",
    "Reynolds", "Griffin", "Wallace", "Moreno", "Hayes", "Bryant", "Herrera", "Gibson",
    "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Castro", "Marshall", "Owens",
    "Harrison", "Fernandez", "McDonald", "Kennedy", "Vargas", "Chen", "Freeman", "Webb",
    "Tucker", "Guzman", "Crawford", "Olson", "Simpson", "Gordon", "Mendez", "Silva",
    "Snyder", "Dixon", "Munoz", "Holmes", "Palmer", "Wagner", "Robertson", "Boyd", "Salazar",
    "Warren", "Meyer", "Schmidt", "Garza", "Ferguson", "Nichols", "Soto", "Gardner",
    "Spencer", "Hawkins", "Vazquez", "Hansen", "Santos", "Bradley", "Elliott", "Cunningham",
    "Duncan", "Armstrong", "Hudson", "Carroll", "Riley", "Andrews", "Perkins", "Hoffman",
    "Johnston", "Matthews", "Pena", "Contreras", "Sandoval", "Kowalski", "Okafor", "Haddad",
)
PRACTITIONER_GIVEN = (
    "Aurelio", "Benedikt", "Cosima", "Dariusz", "Eleni", "Florentyna", "Gunnar", "Halina",
    "Ignatius", "Jolanta", "Kasimir", "Leocadia", "Nikolai", "Ottilie", "Perpetua",
    "Radomir", "Sigrun", "Tiberius", "Ulrike", "Valentin", "Wilhelmina", "Ysolde", "Zdenek",
)
PRACTITIONER_FAMILY = (
    "Abernathy", "Castellanos", "Eriksen", "Fairbanks", "Gallagher", "Holloway", "Ingram",
    "Jablonski", "Kowalczyk", "Lindqvist", "Montgomery", "Nakamura", "Okonkwo", "Pemberton",
    "Quintero", "Rasmussen", "Szymanski", "Thorne", "Underhill", "Whitfield", "Yamamoto",
    "Zielinski",
)


def _city(name: str, state: str, zips: str, area: str, weight: float) -> City:
    return City(name, tuple(zips.split()), state, None, "", area, weight)


CITIES = (
    _city("Boston", "MA", "02108 02115 02118 02127", "617", 3),
    _city("Worcester", "MA", "01602 01604 01608", "508", 1.5),
    _city("Springfield", "MA", "01103 01104 01108", "413", 1.2),
    _city("Cambridge", "MA", "02138 02139 02140", "617", 1),
    _city("Lowell", "MA", "01850 01852 01854", "978", 1),
    _city("New York", "NY", "10001 10016 10025 10031", "212", 6),
    _city("Buffalo", "NY", "14201 14207 14214", "716", 1.2),
    _city("Chicago", "IL", "60601 60614 60629", "312", 4),
    _city("Houston", "TX", "77002 77004 77036", "713", 3.5),
    _city("Dallas", "TX", "75201 75204 75216", "214", 2.5),
    _city("Austin", "TX", "78701 78704 78745", "512", 2),
    _city("San Antonio", "TX", "78205 78207 78230", "210", 2),
    _city("Phoenix", "AZ", "85004 85008 85032", "602", 2.5),
    _city("Philadelphia", "PA", "19103 19104 19143", "215", 2.5),
    _city("Pittsburgh", "PA", "15206 15213 15222", "412", 1.2),
    _city("San Diego", "CA", "92101 92104 92115", "619", 2),
    _city("Los Angeles", "CA", "90012 90026 90044", "213", 5),
    _city("San Francisco", "CA", "94103 94110 94122", "415", 1.6),
    _city("Sacramento", "CA", "95814 95817 95822", "916", 1.2),
    _city("Seattle", "WA", "98101 98103 98118", "206", 1.6),
    _city("Portland", "OR", "97204 97211 97214", "503", 1.3),
    _city("Denver", "CO", "80202 80205 80219", "303", 1.6),
    _city("Atlanta", "GA", "30303 30308 30314", "404", 1.4),
    _city("Miami", "FL", "33125 33130 33137", "305", 1.4),
    _city("Orlando", "FL", "32801 32803 32808", "407", 1),
    _city("Tampa", "FL", "33602 33604 33610", "813", 1),
    _city("Charlotte", "NC", "28202 28205 28210", "704", 1.5),
    _city("Raleigh", "NC", "27601 27604 27610", "919", 1),
    _city("Nashville", "TN", "37203 37206 37211", "615", 1.3),
    _city("Memphis", "TN", "38103 38107 38118", "901", 1),
    _city("Columbus", "OH", "43215 43205 43224", "614", 1.5),
    _city("Cleveland", "OH", "44113 44102 44120", "216", 1),
    _city("Detroit", "MI", "48226 48201 48214", "313", 1.3),
    _city("Minneapolis", "MN", "55401 55404 55408", "612", 1.1),
    _city("St. Louis", "MO", "63101 63104 63118", "314", 0.9),
    _city("Kansas City", "MO", "64106 64108 64111", "816", 1),
    _city("New Orleans", "LA", "70112 70115 70119", "504", 0.9),
    _city("Baltimore", "MD", "21202 21218 21224", "410", 1.1),
    _city("Salt Lake City", "UT", "84111 84102 84106", "801", 0.6),
    _city("Albuquerque", "NM", "87102 87106 87110", "505", 0.9),
    _city("Boise", "ID", "83702 83704 83706", "208", 0.5),
    _city("Providence", "RI", "02903 02906 02908", "401", 0.5),
    _city("Hartford", "CT", "06103 06105 06106", "860", 0.4),
    _city("Burlington", "VT", "05401 05403 05408", "802", 0.2),
)

STREETS = (
    "Maple", "Oak", "Cedar", "Elm", "Pine", "Chestnut", "Walnut", "Spruce", "Willow",
    "Sycamore", "Highland", "Lakeview", "Ridge", "Meadow", "Orchard", "Prospect", "Summit",
    "Sunset", "Valley", "Hillcrest", "Riverside", "Fairview", "Harbor", "Broad", "Center",
    "Church", "Franklin", "Lincoln", "Jefferson", "Madison", "Monroe", "Pleasant", "Union",
    "Water", "School", "Park", "Forest", "Spring", "Mill", "Railroad",
)
_STREET_TYPES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Boulevard", "Way", "Place")

PROFILES = {
    "Patient": _US_CORE + "us-core-patient",
    "Encounter": _US_CORE + "us-core-encounter",
    "Condition": _US_CORE + "us-core-condition",
    "AllergyIntolerance": _US_CORE + "us-core-allergyintolerance",
    "MedicationRequest": _US_CORE + "us-core-medicationrequest",
    "Procedure": _US_CORE + "us-core-procedure",
    "Immunization": _US_CORE + "us-core-immunization",
    "DiagnosticReport": _US_CORE + "us-core-diagnosticreport-lab",
    "DocumentReference": _US_CORE + "us-core-documentreference",
    "Organization": _US_CORE + "us-core-organization",
    "Practitioner": _US_CORE + "us-core-practitioner",
    "Observation:laboratory": _US_CORE + "us-core-observation-lab",
    "Observation:smoking": _US_CORE + "us-core-smokingstatus",
    "Observation:obs_height": _US_CORE + "us-core-body-height",
    "Observation:obs_weight": _US_CORE + "us-core-body-weight",
    "Observation:obs_bmi": _US_CORE + "us-core-bmi",
    "Observation:obs_bp": _US_CORE + "us-core-blood-pressure",
    "Observation:obs_heart_rate": _US_CORE + "us-core-heart-rate",
    "Observation:obs_resp_rate": _US_CORE + "us-core-respiratory-rate",
    "Observation:obs_temperature": _US_CORE + "us-core-body-temperature",
    "Observation:obs_head": _US_CORE + "us-core-head-circumference",
    "Observation:vital-signs": "http://hl7.org/fhir/StructureDefinition/vitalsigns",
}

_RACES = (
    ("2106-3", "White", 0.62),
    ("2054-5", "Black or African American", 0.13),
    ("2028-9", "Asian", 0.07),
    ("1002-5", "American Indian or Alaska Native", 0.01),
    ("2131-1", "Other Race", 0.17),
)
_OMB = "urn:oid:2.16.840.1.113883.6.238"


def _address_line(rng: random.Random) -> str:
    line = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(_STREET_TYPES)}"
    if rng.random() < 0.25:
        line += f" Apt {rng.randint(1, 40)}"
    return line


def _phone(rng: random.Random, city: City) -> str:
    return f"{city.phone_prefix}-555-01{rng.randint(0, 99):02d}"


def _ssn(rng: random.Random) -> str:
    return f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"


def _race_extension(rng: random.Random) -> dict[str, Any]:
    x = rng.random()
    code, display = _RACES[-1][:2]
    for race_code, race_display, share in _RACES:
        x -= share
        if x < 0:
            code, display = race_code, race_display
            break
    return {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "extension": [
            {"url": "ombCategory", "valueCoding": {"system": _OMB, "code": code, "display": display}},
            {"url": "text", "valueString": display},
        ],
    }


def _ethnicity_extension(rng: random.Random) -> dict[str, Any]:
    code, display = (
        ("2135-2", "Hispanic or Latino") if rng.random() < 0.18 else ("2186-5", "Not Hispanic or Latino")
    )
    return {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
        "extension": [
            {"url": "ombCategory", "valueCoding": {"system": _OMB, "code": code, "display": display}},
            {"url": "text", "valueString": display},
        ],
    }


def _identity(rng: random.Random, core: PersonCore) -> Identity:
    mrn = str(rng.randint(10_000_000, 99_999_999))
    ssn = _ssn(rng)
    mother = f"{rng.choice(GIVEN_FEMALE)} {rng.choice(FAMILY)}"
    identifiers = [
        {
            "use": "usual",
            "type": {"coding": [{"system": _V2_0203, "code": "MR", "display": "Medical Record Number"}], "text": "Medical Record Number"},
            "system": MRN_SYSTEM,
            "value": mrn,
        },
        {
            "use": "official",
            "type": {"coding": [{"system": _V2_0203, "code": "SS", "display": "Social Security Number"}], "text": "Social Security Number"},
            "system": "http://hl7.org/fhir/sid/us-ssn",
            "value": ssn,
        },
    ]
    extensions = [
        _race_extension(rng),
        _ethnicity_extension(rng),
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "M" if core.sex == "male" else "F"},
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": mother},
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {"city": core.birth_city.name, "state": core.birth_city.state, "country": "US"},
        },
    ]
    return Identity(identifiers, extensions, {"mrn": mrn, "ssn": ssn, "mothers_maiden_name": mother})


def _practitioner_identifier(rng: random.Random) -> dict[str, Any]:
    return {"system": "http://hl7.org/fhir/sid/us-npi", "value": f"99{rng.randint(0, 99_999_999):08d}"}


def _organization_identifier(rng: random.Random, city: City) -> dict[str, Any]:
    return {"system": "http://hl7.org/fhir/sid/us-npi", "value": f"98{rng.randint(0, 99_999_999):08d}"}


def _organization_name(rng: random.Random, city: City, hospital: bool) -> str:
    if hospital:
        return f"{city.name} {rng.choice(('General Hospital', 'Medical Center', 'Regional Hospital'))}"
    return f"{rng.choice(STREETS)} {rng.choice(('Family Medicine', 'Primary Care', 'Health Center', 'Medical Group'))}"


def format_date(value: date) -> str:
    """US order: ``03/04/1961`` is March 4th."""
    return f"{value.month:02d}/{value.day:02d}/{value.year}"


def _bullets(items: tuple[str, ...], empty: str) -> str:
    return "\n".join(f"- {item}" for item in items) if items else empty


_COMPLAINTS = {
    "wellness": ("No complaints.", "Routine examination, no new complaints.", "Here for an annual check-up."),
    "symptom": ("Presents with {reason}.", "Seen today for {reason}."),
    "followup": ("Follow-up of chronic conditions.", "Scheduled follow-up visit."),
    "emergency": ("Brought to the emergency department for {reason}.",),
    "inpatient": ("Admitted for {reason}.",),
    "prenatal": ("Prenatal care visit.",),
}


def render_note(rng: random.Random, f: NoteFacts) -> str:
    """An English clinical note that repeats the patient's identifying details on purpose."""
    adult = f.age >= 18
    title = ("Mr. " if f.sex == "male" else "Ms. ") + f.family if adult else f.given
    reason = f.reason or "a routine examination"
    complaint = rng.choice(_COMPLAINTS.get(f.kind, _COMPLAINTS["followup"])).format(reason=reason)
    ident = f.identity
    sex_word = ("man" if f.sex == "male" else "woman") if adult else ("boy" if f.sex == "male" else "girl")
    age = f"{f.age}-year-old" if f.age else "newborn"
    lines = [
        format_date(f.when),
        "",
        "# Chief Complaint",
        complaint,
        "",
        "# History of Present Illness",
        f"{f.given} {f.family} is a {age} {sex_word} (date of birth {format_date(f.birth_date)}) "
        f"seen at {f.organization} by {f.practitioner}.",
        f"MRN {ident['mrn']}. SSN {ident['ssn']}.",
        f"Lives at {f.address_line}, {f.city}, {f.state} {f.postal_code}. Phone {f.phone}.",
        "",
        "# Active Problems",
        _bullets(f.problems, "No active problems."),
        "",
        "# Medications",
        _bullets(f.medications, "No active medications."),
        "",
        "# Allergies",
        _bullets(f.allergies, "No known allergies."),
    ]
    if f.vitals is not None:
        sbp, dbp, hr, kg, bmi = f.vitals
        lines += [
            "",
            "# Vital Signs",
            f"Blood pressure {sbp:.0f}/{dbp:.0f} mmHg, heart rate {hr:.0f}/min, weight {kg:.1f} kg, BMI {bmi:.1f} kg/m2.",
        ]
    lines += [
        "",
        "# Assessment and Plan",
        f"{title} was seen for {reason}. "
        + rng.choice(("Plan discussed with the patient.", "Patient agrees with the plan.", "Questions answered."))
        + f" Next visit in {f.months_to_next} months. Contact {f.given} at {f.phone} with results.",
        "",
    ]
    return "\n".join(lines)


LOCALE = Locale(
    code="en",
    language="en-US",
    country="US",
    utc_offset_minutes=-300,
    given_male=GIVEN_MALE,
    given_female=GIVEN_FEMALE,
    family=FAMILY,
    practitioner_given=PRACTITIONER_GIVEN,
    practitioner_family=PRACTITIONER_FAMILY,
    cities=CITIES,
    profiles=PROFILES,
    marital_text={"M": "Married", "S": "Never Married", "D": "Divorced", "W": "Widowed"},
    address_line=_address_line,
    phone=_phone,
    email_domain="example.com",
    identity=_identity,
    practitioner_identifier=_practitioner_identifier,
    organization_identifier=_organization_identifier,
    organization_name=_organization_name,
    format_date=format_date,
    render_note=render_note,
    dosage_text="Take as directed.",
)
