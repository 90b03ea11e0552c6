"""The codes the generator uses: SNOMED CT, LOINC, RxNorm, CVX, with French labels.

Each concept carries the code system's English display and a French label. In French output
``coding.display`` keeps the code system's display while ``CodeableConcept.text`` holds the
French label, as a French system that codes in international terminologies would. The codes
and displays are the ones a Synthea R4 export uses where it has them.

:func:`codeable` builds one shared ``CodeableConcept`` dict per concept and language; the
resource builders put that same dict in every resource, so it must never be mutated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "CONCEPTS",
    "CVX",
    "LABS",
    "LOINC",
    "RXNORM",
    "SNOMED",
    "UCUM",
    "Concept",
    "LabTest",
    "codeable",
    "coding",
    "label",
]

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True, slots=True)
class Concept:
    """One code: its system, code, the system's display, and a French label."""

    system: str
    code: str
    display: str
    fr: str


def _c(system: str, code: str, display: str, fr: str) -> Concept:
    return Concept(system, code, display, fr)


CONCEPTS: dict[str, Concept] = {
    # --- chronic conditions (SNOMED CT) ---
    "hypertension": _c(SNOMED, "59621000", "Essential hypertension (disorder)", "Hypertension artérielle essentielle"),
    "diabetes": _c(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)", "Diabète de type 2"),
    "prediabetes": _c(SNOMED, "15777000", "Prediabetes (finding)", "Prédiabète"),
    "hyperlipidemia": _c(SNOMED, "55822004", "Hyperlipidemia (disorder)", "Hyperlipidémie"),
    "obesity": _c(SNOMED, "162864005", "Body mass index 30+ - obesity (finding)", "Obésité (IMC supérieur ou égal à 30)"),
    "asthma": _c(SNOMED, "195967001", "Asthma (disorder)", "Asthme"),
    "copd": _c(SNOMED, "185086009", "Chronic obstructive bronchitis (disorder)", "Bronchopneumopathie chronique obstructive"),
    "chd": _c(SNOMED, "53741008", "Coronary arteriosclerosis (disorder)", "Cardiopathie ischémique"),
    "afib": _c(SNOMED, "49436004", "Atrial fibrillation (disorder)", "Fibrillation atriale"),
    "ckd": _c(SNOMED, "433144002", "Chronic kidney disease stage 3 (disorder)", "Maladie rénale chronique stade 3"),
    "osteoarthritis": _c(SNOMED, "239873007", "Osteoarthritis of knee (disorder)", "Gonarthrose"),
    "anemia": _c(SNOMED, "271737000", "Anemia (disorder)", "Anémie"),
    "chronic_sinusitis": _c(SNOMED, "40055000", "Chronic sinusitis (disorder)", "Sinusite chronique"),
    "alzheimers": _c(SNOMED, "26929004", "Alzheimer's disease (disorder)", "Maladie d'Alzheimer"),
    "mi": _c(SNOMED, "22298006", "Myocardial infarction (disorder)", "Infarctus du myocarde"),
    "stroke": _c(SNOMED, "230690007", "Cerebrovascular accident (disorder)", "Accident vasculaire cérébral"),
    "pregnancy": _c(SNOMED, "72892002", "Normal pregnancy (finding)", "Grossesse normale"),
    # --- acute conditions (SNOMED CT) ---
    "viral_sinusitis": _c(SNOMED, "444814009", "Viral sinusitis (disorder)", "Sinusite virale"),
    "pharyngitis": _c(SNOMED, "195662009", "Acute viral pharyngitis (disorder)", "Pharyngite virale aiguë"),
    "bronchitis": _c(SNOMED, "10509002", "Acute bronchitis (disorder)", "Bronchite aiguë"),
    "strep_throat": _c(SNOMED, "43878008", "Streptococcal sore throat (disorder)", "Angine streptococcique"),
    "otitis": _c(SNOMED, "65363002", "Otitis media (disorder)", "Otite moyenne"),
    "cystitis": _c(SNOMED, "38822007", "Cystitis (disorder)", "Cystite"),
    "ankle_sprain": _c(SNOMED, "44465007", "Sprain of ankle (disorder)", "Entorse de la cheville"),
    "wrist_sprain": _c(SNOMED, "70704007", "Sprain of wrist (disorder)", "Entorse du poignet"),
    "forearm_fracture": _c(SNOMED, "65966004", "Fracture of forearm (disorder)", "Fracture de l'avant-bras"),
    "concussion": _c(SNOMED, "62106007", "Concussion with no loss of consciousness (disorder)", "Commotion cérébrale sans perte de connaissance"),
    "foot_laceration": _c(SNOMED, "284551006", "Laceration of foot (disorder)", "Plaie du pied"),
    # --- allergies (SNOMED CT) ---
    "allergy_mold": _c(SNOMED, "419474003", "Allergy to mold (finding)", "Allergie aux moisissures"),
    "allergy_dust_mite": _c(SNOMED, "232350006", "House dust mite allergy (finding)", "Allergie aux acariens"),
    "allergy_dander": _c(SNOMED, "232347008", "Dander (animal) allergy (finding)", "Allergie aux phanères d'animaux"),
    "allergy_grass": _c(SNOMED, "418689008", "Allergy to grass pollen (finding)", "Allergie au pollen de graminées"),
    "allergy_tree": _c(SNOMED, "419263009", "Allergy to tree pollen (finding)", "Allergie au pollen d'arbres"),
    "allergy_nut": _c(SNOMED, "91934008", "Allergy to nut (finding)", "Allergie aux fruits à coque"),
    "allergy_peanut": _c(SNOMED, "91935009", "Allergy to peanut (finding)", "Allergie à l'arachide"),
    "allergy_shellfish": _c(SNOMED, "300913006", "Shellfish allergy (finding)", "Allergie aux crustacés"),
    "allergy_egg": _c(SNOMED, "91930004", "Allergy to eggs (finding)", "Allergie à l'œuf"),
    "allergy_penicillin": _c(SNOMED, "91936005", "Allergy to penicillin (finding)", "Allergie à la pénicilline"),
    "reaction_wheal": _c(SNOMED, "247472004", "Wheal (finding)", "Urticaire"),
    "reaction_rash": _c(SNOMED, "271807003", "Eruption of skin (disorder)", "Éruption cutanée"),
    "reaction_rhinoconjunctivitis": _c(SNOMED, "878820003", "Rhinoconjunctivitis (disorder)", "Rhinoconjonctivite"),
    "reaction_anaphylaxis": _c(SNOMED, "39579001", "Anaphylaxis (disorder)", "Anaphylaxie"),
    "reaction_dyspnea": _c(SNOMED, "267036007", "Dyspnea (finding)", "Dyspnée"),
    # --- encounter types (SNOMED CT) ---
    "enc_wellness_adult": _c(SNOMED, "162673000", "General examination of patient (procedure)", "Examen médical général"),
    "enc_wellness_child": _c(SNOMED, "410620009", "Well child visit (procedure)", "Consultation de suivi de l'enfant"),
    "enc_symptom": _c(SNOMED, "185345009", "Encounter for symptom (procedure)", "Consultation pour symptôme"),
    "enc_problem": _c(SNOMED, "185347001", "Encounter for problem (procedure)", "Consultation pour problème de santé"),
    "enc_followup": _c(SNOMED, "390906007", "Follow-up encounter (procedure)", "Consultation de suivi"),
    "enc_emergency": _c(SNOMED, "50849002", "Emergency room admission (procedure)", "Admission aux urgences"),
    "enc_inpatient": _c(SNOMED, "183452005", "Encounter Inpatient", "Hospitalisation"),
    "enc_urgent_care": _c(SNOMED, "702927004", "Urgent care clinic (procedure)", "Consultation de soins non programmés"),
    "enc_prenatal_initial": _c(SNOMED, "424441002", "Prenatal initial visit (regime/therapy)", "Première consultation prénatale"),
    "enc_prenatal": _c(SNOMED, "424619006", "Prenatal visit (regime/therapy)", "Consultation prénatale"),
    "enc_postnatal": _c(SNOMED, "169762003", "Postnatal visit (regime/therapy)", "Consultation postnatale"),
    # --- procedures (SNOMED CT) ---
    "proc_med_reconciliation": _c(SNOMED, "430193006", "Medication Reconciliation (procedure)", "Conciliation médicamenteuse"),
    "proc_depression_screening": _c(SNOMED, "171207006", "Depression screening (procedure)", "Dépistage de la dépression"),
    "proc_fundal_height": _c(SNOMED, "274804006", "Evaluation of uterine fundal height (procedure)", "Mesure de la hauteur utérine"),
    "proc_fetal_heart": _c(SNOMED, "225158009", "Auscultation of the fetal heart (procedure)", "Auscultation du cœur fœtal"),
    "proc_pregnancy_test": _c(SNOMED, "252160004", "Standard pregnancy test (procedure)", "Test de grossesse"),
    "proc_fetal_ultrasound": _c(SNOMED, "169230002", "Ultrasound scan for fetal viability (procedure)", "Échographie de vitalité fœtale"),
    "proc_childbirth": _c(SNOMED, "66348005", "Childbirth (procedure)", "Accouchement"),
    "proc_colonoscopy": _c(SNOMED, "73761001", "Colonoscopy (procedure)", "Coloscopie"),
    "proc_throat_culture": _c(SNOMED, "117015009", "Throat culture (procedure)", "Prélèvement de gorge"),
    "proc_spirometry": _c(SNOMED, "127783003", "Spirometry (procedure)", "Spirométrie"),
    "proc_cardioversion": _c(SNOMED, "180325003", "Electrical cardioversion (procedure)", "Cardioversion électrique"),
    "proc_ecg": _c(SNOMED, "29303009", "Electrocardiographic procedure (procedure)", "Électrocardiogramme"),
    "proc_pci": _c(SNOMED, "415070008", "Percutaneous coronary intervention (procedure)", "Angioplastie coronaire"),
    "proc_suture": _c(SNOMED, "288086009", "Suture open wound (procedure)", "Suture de plaie"),
    "proc_urine_diabetes": _c(SNOMED, "395123002", "Urine screening test for diabetes (procedure)", "Recherche de glycosurie"),
    "proc_cbt": _c(SNOMED, "228557008", "Cognitive and behavioral therapy (regime/therapy)", "Thérapie cognitive et comportementale"),
    # --- medications (RxNorm) ---
    "med_lisinopril": _c(RXNORM, "314076", "lisinopril 10 MG Oral Tablet", "Lisinopril 10 mg, comprimé"),
    "med_hctz": _c(RXNORM, "310798", "Hydrochlorothiazide 25 MG Oral Tablet", "Hydrochlorothiazide 25 mg, comprimé"),
    "med_amlodipine": _c(RXNORM, "197361", "Amlodipine 5 MG Oral Tablet", "Amlodipine 5 mg, comprimé"),
    "med_metformin": _c(RXNORM, "860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "Metformine 500 mg, comprimé à libération prolongée"),
    "med_insulin": _c(RXNORM, "106892", "insulin human, isophane 70 UNT/ML / Regular Insulin, Human 30 UNT/ML Injectable Suspension [Humulin]", "Insuline humaine isophane 70 UI/mL / insuline rapide 30 UI/mL, suspension injectable"),
    "med_simvastatin": _c(RXNORM, "314231", "Simvastatin 10 MG Oral Tablet", "Simvastatine 10 mg, comprimé"),
    "med_atorvastatin": _c(RXNORM, "259255", "Atorvastatin 80 MG Oral Tablet", "Atorvastatine 80 mg, comprimé"),
    "med_clopidogrel": _c(RXNORM, "309362", "Clopidogrel 75 MG Oral Tablet", "Clopidogrel 75 mg, comprimé"),
    "med_nitroglycerin": _c(RXNORM, "705129", "Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray", "Trinitrine 0,4 mg/dose, solution pour pulvérisation buccale"),
    "med_warfarin": _c(RXNORM, "855332", "Warfarin Sodium 5 MG Oral Tablet", "Warfarine 5 mg, comprimé"),
    "med_digoxin": _c(RXNORM, "197604", "Digoxin 0.125 MG Oral Tablet", "Digoxine 0,125 mg, comprimé"),
    "med_fluticasone": _c(RXNORM, "895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "Fluticasone 44 µg/dose, suspension pour inhalation"),
    "med_albuterol": _c(RXNORM, "2123111", "NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "Salbutamol 100 µg/dose, suspension pour inhalation"),
    "med_fluticasone_salmeterol": _c(RXNORM, "896209", "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler", "Fluticasone/salmétérol 250/50 µg/dose, poudre pour inhalation"),
    "med_galantamine": _c(RXNORM, "310436", "Galantamine 4 MG Oral Tablet", "Galantamine 4 mg, comprimé"),
    "med_naproxen": _c(RXNORM, "849574", "Naproxen sodium 220 MG Oral Tablet", "Naproxène sodique 220 mg, comprimé"),
    "med_amox_clav": _c(RXNORM, "562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", "Amoxicilline/acide clavulanique 250 mg/125 mg, comprimé"),
    "med_penicillin_v": _c(RXNORM, "834102", "Penicillin V Potassium 500 MG Oral Tablet", "Phénoxyméthylpénicilline 500 mg, comprimé"),
    "med_acetaminophen": _c(RXNORM, "313782", "Acetaminophen 325 MG Oral Tablet", "Paracétamol 325 mg, comprimé"),
    "med_ibuprofen": _c(RXNORM, "310965", "Ibuprofen 200 MG Oral Tablet", "Ibuprofène 200 mg, comprimé"),
    "med_oxycodone_apap": _c(RXNORM, "1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", "Paracétamol/oxycodone 325 mg/5 mg, comprimé"),
    "med_yaz": _c(RXNORM, "748856", "Yaz 28 Day Pack", "Contraceptif oral (drospirénone/éthinylestradiol), plaquette de 28"),
    "med_errin": _c(RXNORM, "831533", "Errin 28 Day Pack", "Contraceptif oral (noréthistérone), plaquette de 28"),
    # --- vaccines (CVX) ---
    "vax_flu": _c(CVX, "140", "Influenza, seasonal, injectable, preservative free", "Grippe saisonnière, injectable, sans conservateur"),
    "vax_hepb_ped": _c(CVX, "08", "Hep B, adolescent or pediatric", "Hépatite B, enfant ou adolescent"),
    "vax_dtap": _c(CVX, "20", "DTaP", "Diphtérie, tétanos, coqueluche acellulaire (DTCa)"),
    "vax_ipv": _c(CVX, "10", "IPV", "Poliomyélite inactivé"),
    "vax_hib": _c(CVX, "49", "Hib (PRP-OMP)", "Haemophilus influenzae b"),
    "vax_pcv13": _c(CVX, "133", "Pneumococcal conjugate PCV 13", "Pneumocoque conjugué 13-valent"),
    "vax_rotavirus": _c(CVX, "119", "rotavirus, monovalent", "Rotavirus monovalent"),
    "vax_mmr": _c(CVX, "03", "MMR", "Rougeole, oreillons, rubéole (ROR)"),
    "vax_varicella": _c(CVX, "21", "varicella", "Varicelle"),
    "vax_hepa": _c(CVX, "83", "Hep A, ped/adol, 2 dose", "Hépatite A, enfant, 2 doses"),
    "vax_hpv": _c(CVX, "62", "HPV, quadrivalent", "Papillomavirus humain quadrivalent"),
    "vax_tdap": _c(CVX, "115", "Tdap", "Tétanos, diphtérie, coqueluche (dTca)"),
    "vax_mcv4": _c(CVX, "114", "meningococcal MCV4P", "Méningocoque conjugué ACWY"),
    "vax_td": _c(CVX, "113", "Td (adult) preservative free", "Tétanos, diphtérie (adulte)"),
    "vax_zoster": _c(CVX, "121", "zoster", "Zona"),
    "vax_ppsv23": _c(CVX, "33", "pneumococcal polysaccharide vaccine, 23 valent", "Pneumocoque polyosidique 23-valent"),
    # --- observations (LOINC) ---
    "obs_height": _c(LOINC, "8302-2", "Body Height", "Taille"),
    "obs_weight": _c(LOINC, "29463-7", "Body Weight", "Poids"),
    "obs_bmi": _c(LOINC, "39156-5", "Body Mass Index", "Indice de masse corporelle"),
    "obs_head": _c(LOINC, "9843-4", "Head Occipital-frontal circumference", "Périmètre crânien"),
    "obs_bp": _c(LOINC, "85354-9", "Blood pressure panel with all children optional", "Pression artérielle"),
    "obs_systolic": _c(LOINC, "8480-6", "Systolic blood pressure", "Pression artérielle systolique"),
    "obs_diastolic": _c(LOINC, "8462-4", "Diastolic blood pressure", "Pression artérielle diastolique"),
    "obs_heart_rate": _c(LOINC, "8867-4", "Heart rate", "Fréquence cardiaque"),
    "obs_resp_rate": _c(LOINC, "9279-1", "Respiratory rate", "Fréquence respiratoire"),
    "obs_temperature": _c(LOINC, "8310-5", "Body temperature", "Température corporelle"),
    "obs_pain": _c(LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "Intensité de la douleur (échelle numérique 0-10)"),
    "obs_smoking": _c(LOINC, "72166-2", "Tobacco smoking status", "Statut tabagique"),
    "smoking_never": _c(SNOMED, "266919005", "Never smoked tobacco (finding)", "N'a jamais fumé"),
    "smoking_current": _c(SNOMED, "449868002", "Smokes tobacco daily (finding)", "Fume quotidiennement"),
    "smoking_former": _c(SNOMED, "8517006", "Ex-smoker (finding)", "Ancien fumeur"),
    "lab_hba1c": _c(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "Hémoglobine glyquée (HbA1c)"),
    "lab_glucose": _c(LOINC, "2339-0", "Glucose [Mass/volume] in Blood", "Glycémie"),
    "lab_bun": _c(LOINC, "6299-2", "Urea nitrogen [Mass/volume] in Blood", "Urée sanguine"),
    "lab_creatinine": _c(LOINC, "38483-4", "Creatinine [Mass/volume] in Blood", "Créatinine"),
    "lab_egfr": _c(LOINC, "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "Débit de filtration glomérulaire estimé"),
    "lab_calcium": _c(LOINC, "49765-1", "Calcium [Mass/volume] in Blood", "Calcémie"),
    "lab_sodium": _c(LOINC, "2947-0", "Sodium [Moles/volume] in Blood", "Natrémie"),
    "lab_potassium": _c(LOINC, "6298-4", "Potassium [Moles/volume] in Blood", "Kaliémie"),
    "lab_chloride": _c(LOINC, "2069-3", "Chloride [Moles/volume] in Blood", "Chlorémie"),
    "lab_co2": _c(LOINC, "20565-8", "Carbon dioxide, total [Moles/volume] in Blood", "Bicarbonates"),
    "lab_cholesterol": _c(LOINC, "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "Cholestérol total"),
    "lab_triglycerides": _c(LOINC, "2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "Triglycérides"),
    "lab_ldl": _c(LOINC, "18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "Cholestérol LDL"),
    "lab_hdl": _c(LOINC, "2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "Cholestérol HDL"),
    "lab_wbc": _c(LOINC, "6690-2", "Leukocytes [#/volume] in Blood by Automated count", "Leucocytes"),
    "lab_rbc": _c(LOINC, "789-8", "Erythrocytes [#/volume] in Blood by Automated count", "Hématies"),
    "lab_hemoglobin": _c(LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", "Hémoglobine"),
    "lab_hematocrit": _c(LOINC, "4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "Hématocrite"),
    "lab_mcv": _c(LOINC, "787-2", "MCV [Entitic volume] by Automated count", "Volume globulaire moyen (VGM)"),
    "lab_mch": _c(LOINC, "785-6", "MCH [Entitic mass] by Automated count", "Teneur corpusculaire moyenne en hémoglobine (TCMH)"),
    "lab_mchc": _c(LOINC, "786-4", "MCHC [Mass/volume] by Automated count", "Concentration corpusculaire moyenne en hémoglobine (CCMH)"),
    "lab_rdw": _c(LOINC, "21000-5", "Erythrocyte distribution width [Entitic volume] by Automated count", "Indice de distribution des hématies"),
    "lab_platelets": _c(LOINC, "777-3", "Platelets [#/volume] in Blood by Automated count", "Plaquettes"),
    # --- report panels and note types (LOINC) ---
    "panel_bmp": _c(LOINC, "51990-0", "Basic metabolic panel - Blood", "Ionogramme et bilan rénal"),
    "panel_lipid": _c(LOINC, "57698-3", "Lipid panel with direct LDL - Serum or Plasma", "Bilan lipidique"),
    "panel_cbc": _c(LOINC, "58410-2", "CBC panel - Blood by Automated count", "Numération formule sanguine"),
    "note_history_physical": _c(LOINC, "34117-2", "History and physical note", "Observation médicale"),
    "note_progress": _c(LOINC, "11506-3", "Progress note", "Note d'évolution"),
    "note_emergency": _c(LOINC, "34111-5", "Emergency department Note", "Compte rendu de passage aux urgences"),
    "note_discharge": _c(LOINC, "18842-5", "Discharge summary", "Compte rendu d'hospitalisation"),
}


@dataclass(frozen=True, slots=True)
class LabTest:
    """A laboratory test: its concept key, UCUM unit, decimals and adult reference range.

    ``low``/``high`` are ``None`` where the range is one-sided (e.g. cholesterol has only an
    upper limit). ``by_sex`` gives (low, high) per sex where the range depends on it.
    """

    key: str
    unit: str
    decimals: int
    low: float | None
    high: float | None
    by_sex: tuple[tuple[float, float], tuple[float, float]] | None = None  # (female, male)


LABS: dict[str, LabTest] = {
    t.key: t
    for t in (
        LabTest("lab_hba1c", "%", 1, 4.0, 5.6),
        LabTest("lab_glucose", "mg/dL", 0, 70, 99),
        LabTest("lab_bun", "mg/dL", 0, 7, 20),
        LabTest("lab_creatinine", "mg/dL", 2, 0.6, 1.2, ((0.5, 1.1), (0.7, 1.3))),
        LabTest("lab_egfr", "mL/min/{1.73_m2}", 0, 60, None),
        LabTest("lab_calcium", "mg/dL", 1, 8.5, 10.2),
        LabTest("lab_sodium", "mmol/L", 0, 136, 145),
        LabTest("lab_potassium", "mmol/L", 1, 3.5, 5.1),
        LabTest("lab_chloride", "mmol/L", 0, 98, 107),
        LabTest("lab_co2", "mmol/L", 0, 22, 29),
        LabTest("lab_cholesterol", "mg/dL", 0, None, 200),
        LabTest("lab_triglycerides", "mg/dL", 0, None, 150),
        LabTest("lab_ldl", "mg/dL", 0, None, 130),
        LabTest("lab_hdl", "mg/dL", 0, 40, None),
        LabTest("lab_wbc", "10*3/uL", 1, 4.5, 11.0),
        LabTest("lab_rbc", "10*6/uL", 2, 4.2, 5.9, ((3.9, 5.2), (4.5, 5.9))),
        LabTest("lab_hemoglobin", "g/dL", 1, 12.0, 17.5, ((12.0, 15.5), (13.5, 17.5))),
        LabTest("lab_hematocrit", "%", 1, 36.0, 50.0, ((35.5, 44.9), (38.3, 48.6))),
        LabTest("lab_mcv", "fL", 1, 80.0, 100.0),
        LabTest("lab_mch", "pg", 1, 27.0, 33.0),
        LabTest("lab_mchc", "g/dL", 1, 32.0, 36.0),
        LabTest("lab_rdw", "fL", 1, 39.0, 46.0),
        LabTest("lab_platelets", "10*3/uL", 0, 150, 400),
    )
}


def coding(key: str) -> dict[str, str]:
    """The ``Coding`` of concept ``key`` (system, code, display)."""
    concept = CONCEPTS[key]
    return {"system": concept.system, "code": concept.code, "display": concept.display}


@cache
def codeable(key: str, language: str) -> dict[str, Any]:
    """The shared ``CodeableConcept`` of concept ``key``; ``text`` is French when language is fr.

    The same dict is returned on every call: callers must not mutate it.
    """
    concept = CONCEPTS[key]
    text = concept.fr if language == "fr" else concept.display
    return {"coding": [coding(key)], "text": text}


@cache
def label(key: str, language: str) -> str:
    """A human label for notes: the French label, or the display without its semantic tag.

    >>> label("hypertension", "en")
    'Essential hypertension'
    """
    concept = CONCEPTS[key]
    if language == "fr":
        return concept.fr
    text = concept.display
    if text.endswith(")") and " (" in text:
        text = text[: text.rindex(" (")]
    return text
