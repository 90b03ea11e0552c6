"""Clinical vocabulary of the corpus: coded concepts with displays per language, and the words
of clinical writing that a de-identifier must leave alone (headings, drugs, labs, ages).

Codes are real-looking (SNOMED CT, LOINC, RxNorm, CVX); the French displays are the ones a
French hospital would write. Several displays are eponyms or brand names that a model takes
for persons or places (Parkinson, Holter, Lovenox, Eliquis, Hashimoto, Crohn, Alzheimer).
"""

from __future__ import annotations

from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    display: dict[str, str]  # language -> display

    def text(self, lang: str) -> str:
        return self.display[lang]


@dataclass(frozen=True)
class Lab:
    concept: Concept
    unit: str
    low: float
    high: float
    decimals: int


def _c(system: str, code: str, fr: str, en: str) -> Concept:
    return Concept(system, code, {"fr": fr, "en": en})


CONDITIONS = (
    _c(SNOMED, "44054006", "Diabète de type 2", "Type 2 diabetes mellitus"),
    _c(SNOMED, "59621000", "Hypertension artérielle", "Essential hypertension"),
    _c(SNOMED, "49049000", "Maladie de Parkinson", "Parkinson's disease"),
    _c(SNOMED, "49436004", "Fibrillation auriculaire", "Atrial fibrillation"),
    _c(SNOMED, "84114007", "Insuffisance cardiaque", "Heart failure"),
    _c(SNOMED, "13645005", "BPCO", "Chronic obstructive lung disease"),
    _c(SNOMED, "195967001", "Asthme", "Asthma"),
    _c(SNOMED, "21983002", "Thyroïdite de Hashimoto", "Hashimoto thyroiditis"),
    _c(SNOMED, "840539006", "Covid-19", "COVID-19"),
    _c(SNOMED, "414545008", "Cardiopathie ischémique", "Ischemic heart disease"),
    _c(SNOMED, "433144002", "Insuffisance rénale chronique stade 3",
       "Chronic kidney disease stage 3"),
    _c(SNOMED, "370143000", "Épisode dépressif majeur", "Major depressive disorder"),
    _c(SNOMED, "239873007", "Gonarthrose", "Osteoarthritis of knee"),
    _c(SNOMED, "34000006", "Maladie de Crohn", "Crohn's disease"),
    _c(SNOMED, "26929004", "Maladie d'Alzheimer", "Alzheimer's disease"),
    _c(SNOMED, "55822004", "Hypercholestérolémie", "Hyperlipidemia"),
    _c(SNOMED, "128613002", "Épilepsie", "Seizure disorder"),
    _c(SNOMED, "233604007", "Pneumopathie", "Pneumonia"),
)

MEDICATIONS = (
    _c(RXNORM, "861004", "Metformine 1000 mg comprimé", "metformin hydrochloride 1000 MG Oral Tablet"),
    _c(RXNORM, "854235", "Lovenox 4000 UI/0,4 mL", "enoxaparin 40 MG/0.4ML (Lovenox)"),
    _c(RXNORM, "1364445", "Eliquis 5 mg comprimé", "apixaban 5 MG Oral Tablet (Eliquis)"),
    _c(RXNORM, "311028", "Insuline isophane", "insulin isophane, human 100 UNT/ML"),
    _c(RXNORM, "966222", "Lévothyroxine 50 µg", "levothyroxine sodium 0.05 MG Oral Tablet"),
    _c(RXNORM, "314076", "Ramipril 5 mg", "lisinopril 10 MG Oral Tablet"),
    _c(RXNORM, "617314", "Atorvastatine 20 mg", "atorvastatin 20 MG Oral Tablet"),
    _c(RXNORM, "866514", "Bisoprolol 2,5 mg", "metoprolol succinate 25 MG"),
    _c(RXNORM, "313782", "Doliprane 1000 mg", "acetaminophen 500 MG Oral Tablet"),
    _c(RXNORM, "308191", "Amoxicilline 1 g", "amoxicillin 500 MG Oral Capsule"),
    _c(RXNORM, "197444", "Modopar 125", "carbidopa 25 MG / levodopa 100 MG (Sinemet)"),
    _c(RXNORM, "310429", "Furosémide 40 mg", "furosemide 40 MG Oral Tablet"),
    _c(RXNORM, "245314", "Ventoline 100 µg", "albuterol 0.09 MG/ACTUAT inhaler (Ventolin)"),
    _c(RXNORM, "243670", "Kardégic 75 mg", "aspirin 81 MG Oral Tablet"),
)

LABS = (
    Lab(_c(LOINC, "4548-4", "HbA1c", "Hemoglobin A1c"), "%", 5.2, 9.8, 1),
    Lab(_c(LOINC, "2160-0", "Créatinine", "Creatinine"), "µmol/L", 55, 190, 0),
    Lab(_c(LOINC, "718-7", "Hémoglobine", "Hemoglobin"), "g/dL", 9.5, 16.5, 1),
    Lab(_c(LOINC, "2823-3", "Kaliémie", "Potassium"), "mmol/L", 3.2, 5.6, 1),
    Lab(_c(LOINC, "13457-7", "LDL cholestérol", "LDL Cholesterol"), "g/L", 0.6, 2.2, 2),
    Lab(_c(LOINC, "3016-3", "TSH", "Thyrotropin (TSH)"), "mUI/L", 0.3, 7.5, 2),
    Lab(_c(LOINC, "1988-5", "CRP", "C reactive protein"), "mg/L", 1, 120, 0),
    Lab(_c(LOINC, "33762-6", "NT-proBNP", "NT-proBNP"), "pg/mL", 60, 4500, 0),
)

PROCEDURES = (
    _c(SNOMED, "164854000", "Holter ECG", "Holter ECG"),
    _c(SNOMED, "40701008", "Échographie cardiaque", "Echocardiography"),
    _c(SNOMED, "73761001", "Coloscopie", "Colonoscopy"),
    _c(SNOMED, "399208008", "Radiographie thoracique", "Chest X-ray"),
    _c(SNOMED, "816077007", "IRM cérébrale", "MRI of brain"),
    _c(SNOMED, "415070008", "Angioplastie coronaire", "Percutaneous coronary intervention"),
    _c(SNOMED, "71651007", "Mammographie", "Mammography"),
    _c(SNOMED, "127783003", "Spirométrie", "Spirometry"),
)

ALLERGIES = (
    _c(SNOMED, "764146007", "Pénicilline", "Penicillin"),
    _c(SNOMED, "256349002", "Arachide", "Peanut"),
    _c(SNOMED, "111088007", "Latex", "Latex"),
    _c(SNOMED, "387458008", "Aspirine", "Aspirin"),
    _c(SNOMED, "227493005", "Noix de cajou", "Cashew nut"),
)

IMMUNIZATIONS = (
    _c(CVX, "140", "Vaccin antigrippal", "Influenza, seasonal, injectable, preservative free"),
    _c(CVX, "208", "Vaccin Covid-19 Comirnaty", "COVID-19 vaccine, mRNA (Comirnaty)"),
    _c(CVX, "113", "Vaccin dTP", "Td (adult) vaccine"),
    _c(CVX, "33", "Vaccin antipneumococcique", "Pneumococcal polysaccharide vaccine"),
)

ENCOUNTER_TYPES = (
    _c(SNOMED, "185349003", "Consultation", "Encounter for check up"),
    _c(SNOMED, "32485007", "Hospitalisation", "Hospital admission"),
    _c(SNOMED, "50849002", "Passage aux urgences", "Emergency room admission"),
    _c(SNOMED, "185317003", "Téléconsultation", "Telephone encounter"),
)

SPECIALTIES = (
    _c(SNOMED, "394579002", "Cardiologie", "Cardiology"),
    _c(SNOMED, "394814009", "Médecine générale", "General practice"),
    _c(SNOMED, "394583002", "Endocrinologie", "Endocrinology"),
    _c(SNOMED, "394591006", "Neurologie", "Neurology"),
    _c(SNOMED, "394802001", "Médecine interne", "General medicine"),
    _c(SNOMED, "394584008", "Gastro-entérologie", "Gastroenterology"),
    _c(SNOMED, "722164000", "Urgences", "Emergency medicine"),
    _c(SNOMED, "394810000", "Rhumatologie", "Rheumatology"),
)

NOTE_TYPES = {
    # template style -> (LOINC code, display)
    "letter": ("11488-4", "Consult note"),
    "discharge": ("18842-5", "Discharge summary"),
    "nurse": ("34746-8", "Nurse note"),
    "lab": ("11502-2", "Laboratory report"),
    "referral": ("57133-1", "Referral note"),
    "prescription": ("57833-6", "Prescription for medication"),
    "er": ("34111-5", "Emergency department note"),
    "phone": ("34109-9", "Telephone encounter note"),
    "progress": ("11506-3", "Progress note"),
    "markdown": ("34117-2", "History and physical note"),
}

# Words of clinical writing that are not coded in the export but must survive.
HEADINGS = {
    "fr": ("Motif", "Antécédents", "Traitement", "Histoire de la maladie", "Examen clinique",
           "Conclusion", "Allergies", "Mode de vie", "Biologie", "Évolution", "Au total",
           "Traitement de sortie", "Transmissions", "Plan de soins", "Synthèse"),
    "en": ("# Social History", "# History of Present Illness", "# Medications",
           "# Assessment and Plan", "# Allergies", "Chief Complaint", "Past Medical History",
           "Impression", "Plan", "Review of Systems", "Physical Exam", "Discharge Medications",
           "Hospital Course", "Disposition", "Family History"),
}

DRUGS = {
    "fr": ("Lovenox", "Eliquis", "Metformine", "Kardégic", "Doliprane", "Xarelto", "Previscan",
           "Insuline glargine", "Augmentin", "Lévodopa"),
    "en": ("Lovenox", "Eliquis", "metformin", "insulin isophane", "Xarelto", "Tylenol",
           "Lipitor", "warfarin", "Augmentin", "levodopa"),
}

TESTS = {
    "fr": ("HbA1c", "Holter ECG", "NFS", "ionogramme", "scanner thoracique", "ECG",
           "test PCR covid-19", "échographie abdominale", "bilan hépatique", "glycémie à jeun"),
    "en": ("HbA1c", "Holter ECG", "CBC", "basic metabolic panel", "CT chest", "ECG",
           "covid-19 PCR", "abdominal ultrasound", "liver function tests", "fasting glucose"),
}

DIAGNOSES = {
    "fr": ("maladie de Parkinson", "covid-19", "syndrome de Sjögren", "diabète gestationnel",
           "AVC ischémique", "cancer du sein"),
    "en": ("Parkinson's disease", "covid-19", "Sjogren syndrome", "Graves disease",
           "ischemic stroke", "breast cancer"),
}

SMOKING_AGES = {
    "fr": "sevré du tabac à {age} ans",
    "en": "quit smoking at age {age}",
}

HOSPITALS = {
    "fr": ("Centre hospitalier universitaire", "Hôpital de jour de médecine",
           "Clinique du Parc", "Centre hospitalier régional", "Maison de santé pluriprofessionnelle"),
    "en": ("General Hospital", "Community Medical Center", "University Hospital",
           "Riverside Clinic", "Health Centre"),
}
