"""English note templates: fourteen styles written for this corpus (fields: see builder.py).

The same templates serve US and UK patients; the date and phone formats follow the patient's
locale (``D.x.num`` is 04/08/2024 for one and 08/04/2024 for the other).
"""

from __future__ import annotations

from collections.abc import Callable

from .builder import NoteContext


def gp_letter(c: NoteContext) -> str:
    return (
        "{HOSP}\n{TC1} {C1.full}, {SPEC1}\n"
        "Email: {EM.C1}\n\n"
        + c.pick("{D.note.any}", "Date: {D.note.written}") + "\n\n"
        "Dear {TC2} {C2.family},\n\n"
        "Re: {P.*}, DOB {BD.any}, " + ("NHS number {ID.nhs_spaced}" if not c.us else "MRN {ID.mrn}")
        + "\n{AD.P.line}, {AD.P.city}\n\n"
        "Thank you for seeing this {AGE}-year-old " + ("woman" if c.female else "man")
        + " with {COND.0}, first diagnosed in {D.onset.my}. "
        "The patient has had " + c.pick("worsening exertional dyspnoea", "recurrent palpitations",
                                   "poor glycaemic control") + " since {D.prev.written}.\n\n"
        "{H.Past Medical History}: {COND.1}; {PROC.0} on {D.proc.any}. {SMOKE}.\n"
        "{H.# Medications}: {MED.0}; {MED.1}" + c.maybe("; {DR.Eliquis} 5 mg twice daily") + ".\n"
        "{H.# Allergies}: {ALG.0}.\n"
        "Latest {LAB.0} was {LABV.0} on {D.lab.num}.\n\n"
        "I would be grateful for a {T.Holter ECG}. {P.given} can be reached on {PH.P.any}.\n\n"
        "Yours sincerely,\n\n{TC1} {C1.*}\n"
    )


def discharge_summary(c: NoteContext) -> str:
    return (
        "DISCHARGE SUMMARY\n{HOSP}\n\n"
        "Patient: {P.FAMILY_given}    MRN: {ID.mrn}    Encounter: {ID.nda}\n"
        "Date of birth: {BD.any}\n"
        "Admitted: {D.adm.num}    Discharged: {D.dis.num}\n"
        "Attending: {TC1} {C1.FAMILY_given}    PCP: {TC2} {C2.full}\n\n"
        "{H.Chief Complaint}: " + c.pick("shortness of breath", "chest pain", "fall at home")
        + "\n\n{H.Hospital Course}:\n{TP} {P.*} was admitted on {D.adm.written} with "
        "decompensated {COND.0}. {T.CT chest} showed no embolus. Treated with {MED.0} and "
        "{DR.Lovenox} prophylaxis. {LAB.0} {LABV.0}. Previous admission {D.prev.my}.\n\n"
        "{H.Discharge Medications}:\n1. {MED.0}\n2. {MED.1}\n3. {DR.insulin isophane} 10 units "
        "at night\n\n{H.Disposition}: home with " + ("her" if c.female else "his")
        + " {REL1}, {R1.full} ({PH.R1.any}), on {D.dis.written}.\n"
        "Follow-up: {T.basic metabolic panel} on {D.next.any}; clinic with {TC3} {C3.*}.\n"
    )


def nursing_notes(c: NoteContext) -> str:
    return (
        "NURSING NOTES - bed " + str(c.rng.randint(1, 40)) + "\n"
        "{D.note.num} 0700: {P.given} slept well. BM 7.8. {MED.0} given.\n"
        "{D.note.num} 1200: ate lunch. dressing changed. {REL1} {R1.*} phoned, "
        "call back on {PH.R1.any}.\n"
        "1400: seen by {TC1} {C1.*}; continue {DR.Lovenox}. pain 2/10.\n"
        "1700: pt {P.lower} c/o nausea, ondansetron given. FY1 {O1.given} informed.\n"
        "2000: {REL2} ({R2.*}) visiting. {H.Plan}: {T.fasting glucose} in the morning, "
        "{T.CBC} on {D.next.noyear}.\n"
        "RN: {O2.initial_family}\n"
    )


def lab_comment(c: NoteContext) -> str:
    return (
        "CLINICAL LABORATORY - {HOSP}\n"
        "Collected: {D.lab.any}   Accession no. {ID.dossier}\n"
        "Patient: {P.FAMILY_initial}   DOB: {BD.any}   MRN {ID.mrn}\n"
        "Ordering provider: {TC1} {C1.FAMILY}\n\n"
        "{LAB.0}: {LABV.0}\n{LAB.1}: {LABV.1}\n\n"
        "Comment: " + c.pick("result confirmed on repeat sample.",
                             "increased compared with the sample of {D.prev.num}.",
                             "mild haemolysis; interpret with caution.")
        + " Critical value phoned to {TC2} {C2.full} on {D.lab.written} at 11:05 "
        "(read-back verified).\n"
        + c.pick("Repeat {T.HbA1c} in {D.next.my}.\n", "Add {T.liver function tests} on {D.next.noyear}.\n")
        + "Verified by: {O1.full}, biomedical scientist\n"
    )


def referral(c: NoteContext) -> str:
    return (
        "REFERRAL\nTo: {TC2} {C2.FAMILY}, {SPEC2}\nFrom: {TC1} {C1.full}\n"
        "Date: {D.note.any}\n\n"
        "Patient: {TP} {P.given_FAMILY}, {AGE} y/o, {NE} on {BD.any}\n"
        "Address: {AD.P.line}, {AD.P.city}   Phone: {PH.P.any}\n"
        "Email: {EM.P}\n"
        "Insurance: policy {ID.policy}; member id {ID.member}\n\n"
        "Reason for referral: {COND.0} with " + c.pick("abnormal {T.ECG}", "raised {T.HbA1c}")
        + " on {D.lab.any}.\n"
        "{H.Family History}: " + c.pick("mother", "father") + " ({O1.full}) had {COND.2}.\n"
        "{H.# Medications}: {MED.0}, {MED.1}.\n"
        "Emergency contact: {R1.*} ({REL1}), {PH.R1.any}.\n"
    )


def prescription(c: NoteContext) -> str:
    return (
        "{TC1} {C1.FAMILY_given}\n{SPEC1}\n" + ("NPI" if c.us else "GMC no.") + " {ID.rpps}\n"
        "{HOSP}\n\nDate: {D.note.num}\n\n"
        "Patient: {P.full}   DOB: {BD.any}\n"
        + ("SSN: {ID.ssn}\n" if c.us else "NHS no. {ID.nhs_compact}\n") + "\n"
        "Rx\n1. {MED.0} - 1 tab twice daily x 90 days\n2. {MED.1} - as directed\n"
        "3. {DR.Lovenox} 40 mg SC once daily x 10 days\n\n"
        "Home nursing: {O1.full}, {PH.O1.any}.\nRefills: 2. Next review: {D.next.written}.\n"
    )


def ed_note(c: NoteContext) -> str:
    return (
        "EMERGENCY DEPARTMENT NOTE   Encounter {ID.nda}\n"
        "Arrival: {D.note.iso} 02:17   Triage RN: {O1.initial_family}\n"
        "{P.FAMILY_given}, {AGE}{X.sex}, DOB {BD.any}\n"
        "Brought in by " + c.pick("ambulance", "{REL1} ({R1.full})", "police") + ".\n\n"
        "S: " + c.pick("central chest pain for 2 hours", "shortness of breath", "mechanical fall")
        + ". PMH {COND.0}, {COND.1}. {SMOKE}.\n"
        "O: BP 142/88, HR 96, SpO2 94% RA. Crackles at bases. {T.ECG} sinus rhythm. "
        "{T.covid-19 PCR} negative. {LAB.0} {LABV.0}.\n"
        "A: " + c.pick("{COND.2}, likely", "no evidence of ACS") + ".\n"
        "P: discussed with {TC2} {C2.*} (on-call cardiology) at 03:40. Discharge home, "
        "clinic on {D.next.any}. Last admission {D.prev.my}. Letter to {TC3} {C3.*}.\n"
    )


def telephone_encounter(c: NoteContext) -> str:
    return (
        "Telephone encounter - {D.note.weekday}, 4:20 pm\n".replace(
            "weekday", "weekday_mdy" if c.us else "weekday_dmy")
        + "Caller: {R1.*} ({REL1}), {PH.R1.any}, regarding {TP} {P.*} (MRN {ID.mrn}).\n"
        "Reports that {P.given} had a hypo on {D.prev.noyear}; has not taken {MED.0} since "
        "{D.prev2.written}.\n"
        "Advice: restart {DR.metformin}; {T.fasting glucose} tomorrow.\n"
        "Appointment moved to {D.next.written} with {TC1} {C1.family}.\n"
        + c.pick("Updated address: {AD.R1.line}, {AD.R1.city}.\n", "Family email: {EM.R1}.\n")
        + "Taken by {O1.full}, medical secretary.\n"
    )


def history_and_physical(c: NoteContext) -> str:
    return (
        "{D.note.any}\n\n"
        "# Chief Complaint\nNo complaints.\n\n"
        "{H.# History of Present Illness}\n{P.full_noaccent} is a {AGE} year-old "
        + ("female" if c.female else "male") + ". Patient has a history of {COND.0}, {COND.1}.\n\n"
        "{H.# Social History}\n" + c.pick("Patient is married.", "Patient lives alone.")
        + " {SMOKE}. Lives at {AD.P.line}, {AD.P.city} with {REL2} {R2.*}.\n"
        "Patient has " + c.pick("Medicare", "Blue Cross Blue Shield") + " member id {ID.member}.\n\n"
        "{H.# Allergies}\n{ALG.0}.\n\n"
        "{H.# Medications}\n{MED.0}; {MED.1}; {DR.insulin isophane}\n\n"
        "{H.# Assessment and Plan}\nPatient is presenting with {COND.0}. "
        "{IMM.0} administered on {D.prev.any}. {LAB.0} {LABV.0} ({D.lab.any}).\n"
        "Follow up {D.next.any} with {TC1} {C1.*}.\n"
    )


def cardiology_consult(c: NoteContext) -> str:
    return (
        "Cardiology consultation - {D.note.written}\n\n"
        "{TP} {P.given_FAMILY}" + (" (née {P.maiden})" if c.patient.maiden else "")
        + ", aged {AGE}, referred by {TC2} {C2.full}.\n\n"
        "{H.Impression}: palpitations. {T.Holter ECG} of {D.prev.num}: " + c.pick(
            "paroxysmal {COND.0}.", "isolated ectopics.") + "\n"
        "{T.ECG} today: normal. {PROC.0} booked for {D.next.written}.\n"
        "{H.# Medications}: {DR.Eliquis} 5 mg bd, {MED.0}.\n"
        "Background: {COND.1}; {DX.Parkinson's disease} in " + c.pick("father", "mother")
        + ".\n\n{H.Plan}: no change. cc {TC3} {C3.FAMILY}.\n\n{TC1} {C1.full}\n"
    )


def social_work_note(c: NoteContext) -> str:
    return (
        "Social work assessment - {D.note.dmy_long}\n".replace(
            "dmy_long", "mdy_long" if c.us else "dmy_long")
        + "{TP} {P.*}, {AGE}, MRN {ID.mrn}.\n"
        "Address: {AD.P.line}, {AD.P.city}. Tel {PH.P.any}.\n\n"
        "Support: {REL1}, {TR1} {R1.*}" + (" (maiden name {R1.maiden})" if c.relatives[0].maiden
                                          else "")
        + ", {PH.R1.any}; {REL2}, {R2.*}" + (" (née {R2.maiden})" if c.relatives[1].maiden else "")
        + ", living at {AD.R2.line}, {AD.R2.city}.\n"
        "Neighbour {TO1} {O1.full} checks in daily.\n\n"
        "Care package requested on {D.prev.any}. Case no. {ID.dossier}.\n"
        + c.pick("Safe for discharge home.", "Nursing home placement considered for {D.next.my}.")
        + "\nSocial worker: {O2.full}\n"
    )


def preop_assessment(c: NoteContext) -> str:
    return (
        "PRE-OPERATIVE ASSESSMENT\nDate: {D.note.dmy_abbr}\n"
        "Procedure: {PROC.0} on {D.next.mdy_abbr}, surgeon {TC2} {C2.full}.\n"
        "Patient: {P.FAMILY_noaccent}, {P.given} (DOB {BD.any})   Encounter {ID.nda}\n\n"
        "{H.Past Medical History}: {COND.0}, {COND.1}. {SMOKE}.\n"
        "{H.# Allergies}: {ALG.0}.\n"
        "{H.# Medications}: {MED.0} (hold 48 h before), aspirin to continue.\n"
        "Bloods {D.lab.any}: {LAB.0} {LABV.0}; {T.CBC} normal.\n"
        "ASA 2. Anaesthetist: {TC1} {C1.initial_family}.\n"
    )


def portal_message(c: NoteContext) -> str:
    return (
        "From: {EM.P}\nTo: {EM.C1}\nSent: {D.note.weekday}, 09:12\n".replace(
            "weekday", "weekday_mdy" if c.us else "weekday_dmy")
        + "Subject: appointment - {P.FAMILY_initial}\n\n"
        "Dear {TC1} {C1.family},\n\n"
        "This is {P.*}. Could I move my appointment on {D.next.noyear} to {D.next2.any}? "
        "My {REL1} {R1.given} can drive me ({PH.R1.any}). My last {T.CT chest} was in "
        "{D.prev.my} and my {LAB.0} was {LABV.0}.\n\n"
        "Thanks,\n{P.given}\n\n-- reply --\nRescheduled. {O1.full}, clinic coordinator\n"
    )


def progress_note(c: NoteContext) -> str:
    return (
        "PROGRESS NOTE   {D.note.any}\n"
        "{P.all_given} - {P.*} - MRN {ID.mrn}\n\n"
        "S: follow-up of {COND.0}. Feels well. Took {MED.0} regularly since {D.prev.written}.\n"
        "O: weight stable. {LAB.0} {LABV.0} on {D.lab.any}. {T.abdominal ultrasound} normal.\n"
        "A: {COND.0}, controlled. {COND.1}.\n"
        "P: continue {MED.0}, {MED.1}. {IMM.0} today. Review with {TC2} {C2.*} on "
        "{D.next.any}.\n"
        "Contact: {R1.*} ({REL1}), {EM.R1}.\n\n{TC1} {C1.full_noaccent}\n"
    )


TEMPLATES: dict[str, tuple[str, Callable[[NoteContext], str]]] = {
    "en_gp_letter": ("letter", gp_letter),
    "en_discharge_summary": ("discharge", discharge_summary),
    "en_nursing_notes": ("nurse", nursing_notes),
    "en_lab_comment": ("lab", lab_comment),
    "en_referral": ("referral", referral),
    "en_prescription": ("prescription", prescription),
    "en_ed_note": ("er", ed_note),
    "en_telephone_encounter": ("phone", telephone_encounter),
    "en_history_and_physical": ("markdown", history_and_physical),
    "en_cardiology_consult": ("letter", cardiology_consult),
    "en_social_work_note": ("progress", social_work_note),
    "en_preop_assessment": ("progress", preop_assessment),
    "en_portal_message": ("phone", portal_message),
    "en_progress_note": ("progress", progress_note),
}
