"""The ``fr`` locale: French patients, FR Core profiles, NIR/INS identifiers, French notes.

Places are real communes with their real postal codes, département, région and INSEE code;
the NIR of each patient is built from the INSEE code of the birth commune and carries a
valid key, and is sent as the INS (``urn:oid:1.2.250.1.213.1.4.8``, type ``INS-NIR``). Phone
numbers are taken from the ranges ARCEP keeps for fiction (``01 99 00``, ``06 39 98``...), so
none belongs to a real subscriber. Notes follow French habits, including the family name in
capitals (``Jeanne DURAND``): a pseudonymiser has to catch that form too.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from fhirlake.synth.locales import City, Identity, Locale, NoteFacts, PersonCore
from fhirlake.synth.nir import format_nir, make_nir

__all__ = ["LOCALE", "birth_insee"]

_FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
_FR_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
INS_NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
IPP_SYSTEM = "https://fhirlake.example.fr/fhir/sid/ipp"

GIVEN_MALE = (
    "Gabriel", "Léo", "Raphaël", "Arthur", "Louis", "Jules", "Adam", "Maël", "Lucas", "Hugo",
    "Noah", "Liam", "Sacha", "Mohamed", "Nathan", "Ethan", "Théo", "Tom", "Paul", "Timéo",
    "Jean", "Pierre", "Michel", "Philippe", "Alain", "Nicolas", "Christophe", "Patrick",
    "Daniel", "Bernard", "Éric", "Frédéric", "Laurent", "Stéphane", "Olivier", "Thierry",
    "Sébastien", "Julien", "David", "Jacques", "Pascal", "Guillaume", "Vincent", "Antoine",
    "Maxime", "Alexandre", "Romain", "Thomas", "Mathieu", "Quentin", "Benoît", "Yannick",
    "Gérard", "Didier", "Bruno", "Hervé", "Dominique", "Yves", "Marcel", "Gilles",
)
GIVEN_FEMALE = (
    "Jade", "Louise", "Emma", "Ambre", "Alice", "Rose", "Anna", "Alba", "Romy", "Mia", "Lina",
    "Léna", "Chloé", "Inès", "Juliette", "Manon", "Camille", "Sarah", "Léa", "Zoé", "Marie",
    "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Martine", "Christine",
    "Monique", "Valérie", "Sandrine", "Stéphanie", "Véronique", "Nicole", "Sophie", "Céline",
    "Chantal", "Patricia", "Aurélie", "Julie", "Caroline", "Émilie", "Laetitia", "Élodie",
    "Virginie", "Anne", "Jacqueline", "Brigitte", "Hélène", "Claire", "Mélanie", "Audrey",
    "Pauline", "Margaux", "Océane", "Yasmine", "Fatima", "Nadia", "Agnès", "Odile",
)
FAMILY = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent",
    "Fournier", "Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Guérin",
    "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu", "Clément",
    "Gauthier", "Dumont", "Lopez", "Chevalier", "Robin", "Masson", "Sanchez", "Gérard",
    "Nguyen", "Boyer", "Denis", "Lemaire", "Duval", "Gautier", "Roger", "Roy", "Meyer",
    "Lucas", "Meunier", "Perez", "Marchand", "Dufour", "Blanchard", "Barbier", "Dumas",
    "Brunet", "Schmitt", "Leroux", "Colin", "Fernandez", "Renard", "Arnaud", "Rolland",
    "Caron", "Aubert", "Giraud", "Leclerc", "Vidal", "Bourgeois", "Renaud", "Lemoine",
    "Picard", "Gaillard", "Philippe", "Leclercq", "Lacroix", "Fabre", "Dupuis", "Olivier",
    "Rodriguez", "Da Silva", "Hubert", "Guillot", "Rivière", "Le Gall", "Guillaume",
    "Lecomte", "Ménard", "Fleury", "Deschamps", "Carpentier", "Julien", "Benoît", "Maillard",
    "Marchal", "Aubry", "Vasseur", "Le Roux", "Renault", "Jacquet", "Collet", "Prévost",
    "Poirier", "Charpentier", "Royer", "Huet", "Dupuy", "Pons", "Laine", "Perrot", "Guyot",
    "Marty", "Benali", "Haddad", "Diallo", "Traoré", "Ferreira", "Le Goff", "Kerbrat",
)
PRACTITIONER_GIVEN = (
    "Anselme", "Bérangère", "Côme", "Domitille", "Eudes", "Félicité", "Gonzague", "Hortense",
    "Isaure", "Jocelyn", "Ludivine", "Mériadec", "Philibert", "Sidonie", "Tancrède",
    "Wandrille", "Apolline", "Aldric", "Blandine", "Enguerrand",
)
PRACTITIONER_FAMILY = (
    "Aubertin", "Beaumanoir", "Chassagne", "Delorme", "Esquirol", "Fauchard", "Hennequin",
    "Jourdan", "Kerleroux", "Lavergne", "Marchetti", "Noiret", "Ollivier", "Peyrade",
    "Quiniou", "Ravier", "Sauvageot", "Tessier", "Urvoy", "Vauquelin", "Wattier",
)


def _city(name: str, postal: str, dept: str, region: str, insee: str, zone: str, weight: float) -> City:
    return City(name, tuple(postal.split()), region, dept, insee, zone, weight)


_IDF, _ARA, _PACA, _OCC = "Île-de-France", "Auvergne-Rhône-Alpes", "Provence-Alpes-Côte d'Azur", "Occitanie"
_NAQ, _HDF, _GE, _PDL = "Nouvelle-Aquitaine", "Hauts-de-France", "Grand Est", "Pays de la Loire"
_BRE, _NOR, _BFC, _CVL = "Bretagne", "Normandie", "Bourgogne-Franche-Comté", "Centre-Val de Loire"

CITIES = (
    _city("Paris", " ".join(f"750{n:02d}" for n in range(1, 21)), "Paris", _IDF, "75056", "01", 10),
    _city("Marseille", " ".join(f"130{n:02d}" for n in range(1, 17)), "Bouches-du-Rhône", _PACA, "13055", "04", 4.5),
    _city("Lyon", " ".join(f"6900{n}" for n in range(1, 10)), "Rhône", _ARA, "69123", "04", 3.5),
    _city("Toulouse", "31000 31100 31200 31300 31400 31500", "Haute-Garonne", _OCC, "31555", "05", 3),
    _city("Nice", "06000 06100 06200 06300", "Alpes-Maritimes", _PACA, "06088", "04", 2),
    _city("Nantes", "44000 44100 44200 44300", "Loire-Atlantique", _PDL, "44109", "02", 2),
    _city("Montpellier", "34000 34070 34080 34090", "Hérault", _OCC, "34172", "04", 1.8),
    _city("Strasbourg", "67000 67100 67200", "Bas-Rhin", _GE, "67482", "03", 1.8),
    _city("Bordeaux", "33000 33100 33200 33300 33800", "Gironde", _NAQ, "33063", "05", 1.6),
    _city("Lille", "59000 59160 59800", "Nord", _HDF, "59350", "03", 1.5),
    _city("Rennes", "35000 35200 35700", "Ille-et-Vilaine", _BRE, "35238", "02", 1.4),
    _city("Reims", "51100", "Marne", _GE, "51454", "03", 1),
    _city("Toulon", "83000 83100 83200", "Var", _PACA, "83137", "04", 1),
    _city("Saint-Étienne", "42000 42100", "Loire", _ARA, "42218", "04", 1),
    _city("Le Havre", "76600 76610 76620", "Seine-Maritime", _NOR, "76351", "02", 0.9),
    _city("Grenoble", "38000 38100", "Isère", _ARA, "38185", "04", 0.9),
    _city("Dijon", "21000", "Côte-d'Or", _BFC, "21231", "03", 0.9),
    _city("Angers", "49000 49100", "Maine-et-Loire", _PDL, "49007", "02", 0.9),
    _city("Nîmes", "30000 30900", "Gard", _OCC, "30189", "04", 0.8),
    _city("Villeurbanne", "69100", "Rhône", _ARA, "69266", "04", 0.8),
    _city("Clermont-Ferrand", "63000 63100", "Puy-de-Dôme", _ARA, "63113", "04", 0.8),
    _city("Le Mans", "72000 72100", "Sarthe", _PDL, "72181", "02", 0.8),
    _city("Aix-en-Provence", "13090 13100", "Bouches-du-Rhône", _PACA, "13001", "04", 0.8),
    _city("Brest", "29200", "Finistère", _BRE, "29019", "02", 0.7),
    _city("Tours", "37000 37100 37200", "Indre-et-Loire", _CVL, "37261", "02", 0.7),
    _city("Amiens", "80000 80080 80090", "Somme", _HDF, "80021", "03", 0.7),
    _city("Limoges", "87000 87100 87280", "Haute-Vienne", _NAQ, "87085", "05", 0.7),
    _city("Perpignan", "66000 66100", "Pyrénées-Orientales", _OCC, "66136", "04", 0.6),
    _city("Metz", "57000 57050 57070", "Moselle", _GE, "57463", "03", 0.6),
    _city("Besançon", "25000", "Doubs", _BFC, "25056", "03", 0.6),
    _city("Orléans", "45000 45100", "Loiret", _CVL, "45234", "02", 0.6),
    _city("Rouen", "76000 76100", "Seine-Maritime", _NOR, "76540", "02", 0.6),
    _city("Mulhouse", "68100 68200", "Haut-Rhin", _GE, "68224", "03", 0.6),
    _city("Caen", "14000", "Calvados", _NOR, "14118", "02", 0.5),
    _city("Nancy", "54000 54100", "Meurthe-et-Moselle", _GE, "54395", "03", 0.5),
    _city("Poitiers", "86000", "Vienne", _NAQ, "86194", "05", 0.4),
    _city("Pau", "64000", "Pyrénées-Atlantiques", _NAQ, "64445", "05", 0.4),
    _city("La Rochelle", "17000", "Charente-Maritime", _NAQ, "17300", "05", 0.4),
    _city("Avignon", "84000", "Vaucluse", _PACA, "84007", "04", 0.4),
    _city("Ajaccio", "20000 20090", "Corse-du-Sud", "Corse", "2A004", "04", 0.3),
    _city("Bastia", "20200 20600", "Haute-Corse", "Corse", "2B033", "04", 0.2),
    _city("Saint-Denis", "97400 97490", "La Réunion", "La Réunion", "97411", "06", 0.6),
    _city("Fort-de-France", "97200 97234", "Martinique", "Martinique", "97209", "06", 0.3),
)

# Ranges that ARCEP keeps for films and fiction, by dialling zone.
_FICTION_PREFIX = {"01": "01 99 00", "02": "02 61 91", "03": "03 53 01", "04": "04 65 71", "05": "05 36 49", "06": "06 39 98"}

STREETS = (
    "rue de la République", "rue de la Gare", "rue des Écoles", "rue de la Paix",
    "avenue des Lilas", "rue du Château", "place de l'Église", "allée des Acacias",
    "rue du Marché", "boulevard de la Liberté", "chemin des Peupliers", "rue du Stade",
    "avenue des Tilleuls", "rue du Port", "route Nationale", "impasse des Roses",
    "avenue de Verdun", "rue de Lorraine", "rue de Bretagne", "boulevard des Belges",
    "rue des Jardins", "rue des Vignes", "quai des Brumes", "rue de la Poste", "rue Neuve",
)

PROFILES = {
    "Patient": _FR_CORE + "fr-core-patient-ins",
    "Encounter": _FR_CORE + "fr-core-encounter",
    "Condition": _FR_CORE + "fr-core-condition",
    "AllergyIntolerance": _FR_CORE + "fr-core-allergy-intolerance",
    "MedicationRequest": _FR_CORE + "fr-core-medication-request",
    "Procedure": _FR_CORE + "fr-core-procedure",
    "Immunization": _FR_CORE + "fr-core-immunization",
    "Organization": _FR_CORE + "fr-core-organization",
    "Practitioner": _FR_CORE + "fr-core-practitioner",
    "Observation:obs_height": _FR_CORE + "fr-core-observation-body-height",
    "Observation:obs_weight": _FR_CORE + "fr-core-observation-body-weight",
    "Observation:obs_bmi": _FR_CORE + "fr-core-observation-bmi",
    "Observation:obs_bp": _FR_CORE + "fr-core-observation-bp",
    "Observation:obs_heart_rate": _FR_CORE + "fr-core-observation-heartrate",
    "Observation:obs_resp_rate": _FR_CORE + "fr-core-observation-resp-rate",
    "Observation:obs_temperature": _FR_CORE + "fr-core-observation-body-temperature",
    "Observation:obs_head": _FR_CORE + "fr-core-observation-head-circumference",
    "Observation:vital-signs": "http://hl7.org/fhir/StructureDefinition/vitalsigns",
}


def birth_insee(city: City, postal_code: str) -> str:
    """The INSEE code of the commune of birth, by arrondissement in Paris, Marseille and Lyon."""
    if city.insee == "75056":
        return "751" + postal_code[-2:]
    if city.insee == "13055":
        return "132" + postal_code[-2:]
    if city.insee == "69123":
        return "6938" + postal_code[-1]
    return city.insee


def _address_line(rng: random.Random) -> str:
    number = rng.randint(1, 180)
    suffix = rng.choice(("", "", "", "", " bis", " ter"))
    return f"{number}{suffix} {rng.choice(STREETS)}"


def _phone(rng: random.Random, city: City) -> str:
    zone = "06" if rng.random() < 0.6 else city.phone_prefix
    return f"{_FICTION_PREFIX[zone]} {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"


def _identity(rng: random.Random, core: PersonCore) -> Identity:
    born_here = core.birth_city is core.city
    birth_postal = core.postal_code if born_here else rng.choice(core.birth_city.postal_codes)
    insee = birth_insee(core.birth_city, birth_postal)
    nir = make_nir(rng, core.sex, core.birth_date, insee)
    ipp = str(rng.randint(1_000_000_000, 9_999_999_999))
    identifiers = [
        {
            "use": "usual",
            "type": {"coding": [{"system": _V2_0203, "code": "PI", "display": "Patient internal identifier"}], "text": "IPP"},
            "system": IPP_SYSTEM,
            "value": ipp,
        },
        {
            "use": "official",
            "type": {"coding": [{"system": _FR_V2_0203, "code": "INS-NIR", "display": "NIR définitif"}], "text": "INS-NIR"},
            "system": INS_NIR_SYSTEM,
            "value": nir,
        },
    ]
    extensions: list[dict[str, Any]] = [
        {
            "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability",
            "extension": [
                {
                    "url": "identityStatus",
                    "valueCoding": {
                        "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status",
                        "code": "QUAL",
                        "display": "Identité qualifiée",
                    },
                }
            ],
        },
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {
                "extension": [
                    {
                        "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code",
                        "valueCoding": {
                            "system": "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM",
                            "code": insee,
                        },
                    }
                ],
                "city": core.birth_city.name,
                "postalCode": birth_postal,
                "country": "FR",
            },
        },
    ]
    truth = {"ipp": ipp, "nir": nir, "nir_text": format_nir(nir), "family_upper": core.family.upper()}
    return Identity(identifiers, extensions, truth)


def _practitioner_identifier(rng: random.Random) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": _FR_V2_0203, "code": "IDNPS", "display": "Identifiant National de Professionnel de Santé"}]},
        "system": "urn:oid:1.2.250.1.71.4.2.1",
        "value": f"81{rng.randint(0, 999_999_999):09d}",
    }


def _organization_identifier(rng: random.Random, city: City) -> dict[str, Any]:
    department = city.insee[:3] if city.insee.startswith("97") else city.insee[:2]
    finess = f"{department}{rng.randint(0, 10 ** (9 - len(department)) - 1):0{9 - len(department)}d}"
    return {
        "type": {"coding": [{"system": _FR_V2_0203, "code": "FINEG", "display": "FINESS d'entité géographique"}]},
        "system": "urn:oid:1.2.250.1.71.4.2.2",
        "value": "1" + finess,
    }


def _organization_name(rng: random.Random, city: City, hospital: bool) -> str:
    if hospital:
        return rng.choice(("Centre hospitalier de ", "Hôpital privé de ", "Clinique de ")) + city.name
    return rng.choice(("Maison de santé ", "Cabinet médical ", "Centre de santé ")) + rng.choice(
        ("des Lilas", "de la Gare", "du Parc", "des Acacias", "du Centre", "Pasteur")
    )


def format_date(value: date) -> str:
    """French order: ``04/03/1961`` is 4 March."""
    return f"{value.day:02d}/{value.month:02d}/{value.year}"


_MOTIFS = {
    "wellness": ("Bilan de santé annuel.", "Consultation de suivi systématique, pas de plainte."),
    "symptom": ("Consultation pour {reason}.", "Vient ce jour pour {reason}."),
    "followup": ("Suivi des pathologies chroniques.", "Consultation de suivi programmée."),
    "emergency": ("Admis(e) aux urgences pour {reason}.",),
    "inpatient": ("Hospitalisation pour {reason}.",),
    "prenatal": ("Consultation de suivi de grossesse.",),
}


def _decimal(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def _lst(items: tuple[str, ...], empty: str) -> str:
    return "\n".join(f"- {item}" for item in items) if items else empty


def render_note(rng: random.Random, f: NoteFacts) -> str:
    """A French clinical note that repeats the patient's identifying details on purpose."""
    female = f.sex == "female"
    civility = ("Mme" if female else "M.") if f.age >= 18 else ("La jeune" if female else "Le jeune")
    age = f"{f.age} ans" if f.age else "nouveau-né(e)"
    born = "née" if female else "né"
    reason = (f.reason or "bilan de santé").lower()
    ident = f.identity
    lines = [
        f"Compte rendu du {format_date(f.when)}",
        "",
        "Motif : " + rng.choice(_MOTIFS.get(f.kind, _MOTIFS["followup"])).format(reason=reason),
        "",
        f"{civility} {f.given} {ident['family_upper']}, {born} le {format_date(f.birth_date)} ({age}).",
        f"IPP {ident['ipp']}. NIR {ident['nir_text']} (INS qualifiée).",
        f"Domicile : {f.address_line}, {f.postal_code} {f.city}. Tél. {f.phone}.",
        f"Vu(e) par le {f.practitioner}, {f.organization}.",
        "",
        "Antécédents :",
        _lst(f.problems, "Aucun antécédent notable."),
        "",
        "Traitement en cours :",
        _lst(f.medications, "Aucun traitement au long cours."),
        "",
        "Allergies :",
        _lst(f.allergies, "Pas d'allergie connue."),
    ]
    if f.vitals is not None:
        sbp, dbp, hr, kg, bmi = f.vitals
        lines += [
            "",
            f"Examen clinique : PA {sbp:.0f}/{dbp:.0f} mmHg, FC {hr:.0f}/min, "
            f"poids {_decimal(kg)} kg, IMC {_decimal(bmi)} kg/m².",
        ]
    lines += [
        "",
        f"Conclusion : {civility} {f.family} a été vu(e) pour {reason}. "
        + rng.choice(("Conduite à tenir expliquée au patient.", "Le patient est d'accord avec la prise en charge."))
        + f" Prochain rendez-vous dans {f.months_to_next} mois. Joindre {f.given} au {f.phone} pour les résultats.",
        "",
    ]
    return "\n".join(lines)


LOCALE = Locale(
    code="fr",
    language="fr-FR",
    country="FR",
    utc_offset_minutes=60,
    given_male=GIVEN_MALE,
    given_female=GIVEN_FEMALE,
    family=FAMILY,
    practitioner_given=PRACTITIONER_GIVEN,
    practitioner_family=PRACTITIONER_FAMILY,
    cities=CITIES,
    profiles=PROFILES,
    marital_text={"M": "Marié(e)", "S": "Célibataire", "D": "Divorcé(e)", "W": "Veuf, veuve"},
    address_line=_address_line,
    phone=_phone,
    email_domain="example.fr",
    identity=_identity,
    practitioner_identifier=_practitioner_identifier,
    organization_identifier=_organization_identifier,
    organization_name=_organization_name,
    format_date=format_date,
    render_note=render_note,
    dosage_text="Selon prescription.",
)
