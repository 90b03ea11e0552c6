"""French note templates: fourteen styles written for this corpus (fields: see builder.py)."""

from __future__ import annotations

from collections.abc import Callable

from .builder import NoteContext


def lettre_confrere(c: NoteContext) -> str:
    return (
        "{HOSP}\n{TC1} {C1.full} - {SPEC1}\n"
        + c.pick("Tél. secrétariat : 01 45 00 00 00\n", "")
        + "Courriel : {EM.C1}\n\n"
        + c.pick("Le {D.note.any}", "{X.ville_h}, le {D.note.written}") + "\n\n"
        "Cher confrère, cher {TC2} {C2.family},\n\n"
        "Je vous adresse {TP} {P.*}, {NE} le {BD.any} ({AGE} ans), "
        + c.pick("que je suis pour : {COND.0}.", "suivi(e) depuis {D.onset.my} pour : {COND.0}.")
        + "\n\n{H.Motif} : " + c.pick("déséquilibre glycémique", "dyspnée d'effort", "bilan")
        + " malgré {MED.0}.\n"
        "{H.Antécédents} : {COND.1}, {PROC.0} le {D.proc.any}. Allergie : {ALG.0}.\n"
        "{H.Traitement} : {MED.0}, {MED.1}" + c.maybe(", {DR.Lovenox} en préventif") + ".\n"
        "Dernière {LAB.0} à {LABV.0} le {D.lab.num}.\n\n"
        "Je l'ai revu(e) le {D.prev.written}; {PRON} " + c.pick("se plaint", "ne se plaint pas")
        + " de palpitations. Je vous remercie de programmer un {T.Holter ECG}.\n"
        "{TP} {P.*} est joignable au {PH.P.any} ou par courriel ({EM.P}).\n\n"
        "Bien confraternellement,\n{TC1} {C1.*}\n"
        + c.pick("RPPS {ID.rpps}\n", "")
    )


def crh(c: NoteContext) -> str:
    return (
        "COMPTE RENDU D'HOSPITALISATION\n{HOSP} - service de {SPEC1}\n\n"
        "Patient(e) : {P.FAMILY_given} - {NE} le {BD.any}\nIPP : {ID.ipp}   NDA : {ID.nda}\n"
        "Adresse : {AD.P.line}, {AD.P.city}\n"
        "Séjour du {D.adm.num} au {D.dis.num}\n"
        "Médecin traitant : {TC2} {C2.full}\n\n"
        "{H.Motif} : " + c.pick("décompensation de {COND.0}", "{COND.0} déséquilibré(e)")
        + "\n\n{H.Antécédents} :\n- {COND.1}\n- {COND.2}\n- {SMOKE}\n\n"
        "{H.Histoire de la maladie} :\n{TP} {P.*} a été admis(e) le {D.adm.written} par les "
        "urgences pour " + c.pick("dyspnée", "malaise", "chute") + ". "
        "Une {PROC.0} avait été réalisée en {D.prev.my}.\n\n"
        "{H.Évolution} : favorable sous {MED.0} et {MED.1}. {LAB.0} à {LABV.0}.\n"
        "{H.Traitement de sortie} : {MED.0}, {MED.1}, {DR.Eliquis} 5 mg x2.\n\n"
        "{H.Au total} : sortie le {D.dis.written} au domicile. Personne à prévenir : "
        "{R1.full} ({REL1}, {PH.R1.any}).\n"
        "Rendez-vous de contrôle le {D.next.any} avec le {TC3} {C3.*}.\n\n"
        "{TC1} {C1.initial_family}, {SPEC1}\n"
    )


def transmissions(c: NoteContext) -> str:
    return (
        "{H.Transmissions} IDE - ch. " + str(c.rng.randint(100, 450)) + "\n"
        "{D.note.dmy_slash} 07h30 : {P.given} a " + c.pick("bien dormi", "peu dormi")
        + ". glycémie capillaire 1,42 g/l. {MED.0} donné.\n"
        "{D.note.dmy_slash_short} 12h : repas pris en totalité. pansement refait. "
        "{TR1} {R1.*} ({REL1}) a appelé, rappeler au {PH.R1.any}.\n"
        "14h : visite du {TC1} {C1.*}, poursuite {DR.Lovenox}. "
        + c.pick("pas de douleur.", "EVA 3/10, {DR.Doliprane} donné.") + "\n"
        "17h : pat. {P.lower} se plaint de nausées. prévenu interne {O1.given}.\n"
        "20h : {REL2} ({R2.*}) présent(e) en chambre. {H.Plan de soins} : "
        "{T.glycémie à jeun} demain, {T.ionogramme} le {D.next.noyear}.\n"
        "ide : {O2.initial_family}\n"
    )


def commentaire_labo(c: NoteContext) -> str:
    return (
        "LABORATOIRE DE BIOLOGIE MÉDICALE - {HOSP}\n"
        "Prélèvement du {D.lab.any} - Dossier n° {ID.dossier}\n"
        "Patient : {P.FAMILY_initial}  DDN : {BD.dmy_slash}  IPP {ID.ipp}\n"
        "Prescripteur : {TC1} {C1.FAMILY}\n\n"
        "{LAB.0} : {LABV.0}\n{LAB.1} : {LABV.1}\n\n"
        "Commentaire : " + c.pick(
            "résultat contrôlé sur un second prélèvement.",
            "valeur en hausse par rapport au bilan du {D.prev.dmy_slash}.",
            "hémolyse légère, à interpréter avec prudence.")
        + " {H.Biologie} transmise par téléphone au {TC2} {C2.full} le {D.lab.written} à 11h05"
        ".\n" + c.pick("Contrôle de l'{T.HbA1c} à prévoir en {D.next.my}.\n",
                       "Ajout d'un {T.bilan hépatique} le {D.next.noyear}.\n")
        + "Biologiste : {O1.full}\n"
    )


def adressage(c: NoteContext) -> str:
    return (
        "Objet : demande d'avis - {TP} {P.given_FAMILY}\n\n"
        "Cher {TC2} {C2.FAMILY},\n\n"
        "Merci de recevoir {TP} {P.*} ({AGE} ans, {NE} le {BD.any}), domicilié(e) "
        "{AD.P.line}, {AD.P.city}, tél. {PH.P.any}.\n"
        "N° de sécurité sociale : {ID.nir_spaced}.\n"
        "Mutuelle : adhérent n° {ID.member}.\n\n"
        "Motif de la demande : {COND.0} avec " + c.pick("{T.ECG} anormal", "{T.HbA1c} élevée")
        + " le {D.lab.any}.\n"
        "{H.Antécédents} familiaux : " + c.pick("sa mère", "son père") + " ({O1.full}) suivi(e) "
        "pour une {COND.2}.\n"
        "{H.Traitement} en cours : {MED.0}, {MED.1}.\n\n"
        "Personne de confiance : {R1.*}, {REL1}, {PH.R1.any}.\n\n"
        "Confraternellement,\n{TC1} {C1.full}\n"
    )


def ordonnance(c: NoteContext) -> str:
    return (
        "{TC1} {C1.FAMILY_given}\n{SPEC1}\nN° RPPS : {ID.rpps}\n{HOSP}\n\n"
        "Le {D.note.num}\n\n"
        + c.pick("{TP} {P.FAMILY_given}", "{TP} {P.full}") + "\n"
        "{NE} le {BD.dmy_slash} - {AGE} ans - poids 72 kg\n\n"
        "ORDONNANCE\n\n"
        "1) {MED.0} : 1 comprimé matin et soir pendant 3 mois\n"
        "2) {MED.1} : selon schéma\n"
        "3) {DR.Lovenox} 4000 UI : 1 injection sous-cutanée par jour pendant 10 jours\n"
        "Soins infirmiers à domicile ({O1.full}, infirmière, {PH.O1.any}).\n\n"
        "Renouvelable 2 fois. Prochain contrôle : {D.next.written}.\n"
    )


def urgences(c: NoteContext) -> str:
    return (
        "OBSERVATION URGENCES - NDA {ID.nda}\n"
        "Arrivée : {D.note.iso} 02:17 - IOA : {O1.initial_family}\n"
        "{P.FAMILY_given}, {AGE} ans ({BD.any})\n"
        "Amené(e) par " + c.pick("les pompiers", "le SAMU", "{REL1} ({R1.full})") + ".\n\n"
        "{H.Motif} : " + c.pick("douleur thoracique", "dyspnée", "chute de sa hauteur") + ".\n"
        "{H.Antécédents} : {COND.0}, {COND.1}. {SMOKE}.\n"
        "{H.Traitement} : {MED.0}.\n\n"
        "{H.Examen clinique} : PA 142/88, FC 96, SpO2 94 %. Auscultation : crépitants bases.\n"
        "{T.ECG} : rythme sinusal. {T.test PCR covid-19} négatif. {LAB.0} {LABV.0}.\n\n"
        "{H.Conclusion} : " + c.pick("{COND.2} probable", "pas d'argument pour un SCA")
        + ". Avis du {TC2} {C2.*} (cardiologue de garde) pris à 03h40.\n"
        "Sortie vers domicile, consultation le {D.next.any}. Dernière hospitalisation : "
        "{D.prev.my}.\nCourrier remis au patient et envoyé au {TC3} {C3.*}.\n"
    )


def appel(c: NoteContext) -> str:
    return (
        "Note d'appel téléphonique - {D.note.weekday_dmy}, 16h20\n"
        "Appel de {R1.*} ({REL1}) au {PH.R1.any}, "
        "concernant {TP} {P.*} (IPP {ID.ipp}).\n"
        "Signale que {P.given} a fait un malaise le {D.prev.noyear}; "
        "glycémie non mesurée. Ne prend plus son {MED.0} depuis {D.prev2.written}.\n"
        "Conseil : reprise du {DR.Metformine}, {T.glycémie à jeun} demain matin.\n"
        "RDV avancé au {D.next.weekday_dmy} avec le {TC1} {C1.family}.\n"
        + c.pick("Coordonnées à jour : {AD.R1.line}, {AD.R1.city}.\n",
                 "Courriel de la famille : {EM.R1}.\n")
        + "Noté par {O1.full}, secrétaire.\n"
    )


def sections_markdown(c: NoteContext) -> str:
    return (
        "# {H.Synthèse}\n\n"
        "{P.full_noaccent} - {P.*} - {NE} le {BD.any}\n"
        "INS : {ID.nir_compact}\n\n"
        "## {H.Antécédents}\n- {COND.0} (depuis {D.onset.my})\n- {COND.1}\n- {PROC.0}\n\n"
        "## {H.Mode de vie}\nVit avec {REL2} ({R2.*}) au {AD.P.line}, {AD.P.city}. "
        + c.pick("Retraité(e).", "Travaille à temps partiel.") + " {SMOKE}. Alcool : 0.\n\n"
        "## {H.Traitement}\n- {MED.0}\n- {MED.1}\n\n"
        "## {H.Allergies}\n- {ALG.0}\n\n"
        "## Suivi\n- {LAB.0} {LABV.0} ({D.lab.any})\n- vaccination : {IMM.0} le {D.prev.any}\n"
        "- prochain RDV : {D.next.any} ({TC1} {C1.*})\n"
    )


def consultation_cardio(c: NoteContext) -> str:
    return (
        "Consultation de {SPEC1} du {D.note.written}\n\n"
        "{TP} {P.given_FAMILY}" + (" (née {P.maiden})" if c.patient.maiden else "")
        + ", {AGE} ans, adressé(e) par le {TC2} {C2.full}.\n\n"
        "{H.Motif} : palpitations. {T.Holter ECG} du {D.prev.dmy_slash} : " + c.pick(
            "épisodes de {COND.0} paroxystique.", "extrasystoles isolées.") + "\n"
        "{T.ECG} ce jour : normal. {PROC.0} prévue le {D.next.written}.\n"
        "{H.Traitement} : {DR.Eliquis} 5 mg matin et soir, {MED.0}.\n"
        "Contexte : {COND.1}; {DX.maladie de Parkinson} chez " + c.pick("le père", "la mère")
        + ".\n\n{H.Conclusion} : pas de modification thérapeutique. "
        "Copie au {TC3} {C3.FAMILY}.\n\n{TC1} {C1.full}\n"
    )


def note_sociale(c: NoteContext) -> str:
    return (
        "Évaluation sociale - {D.note.dmy_long}\n"
        "{TP} {P.*}, {AGE} ans, IPP {ID.ipp}.\n"
        "Adresse : {AD.P.line} {AD.P.city}. Tél. {PH.P.any}.\n\n"
        "Entourage : {REL1}, {TR1} {R1.*}"
        + (" (née {R1.maiden})" if c.relatives[0].maiden else "")
        + ", {PH.R1.any}; {REL2}, {R2.*}"
        + (" (nom de naissance : {R2.maiden})" if c.relatives[1].maiden else "")
        + ", demeurant {AD.R2.line}, {AD.R2.city}.\n"
        "Voisine très présente : {TO1} {O1.full}.\n\n"
        "Mesure de protection demandée le {D.prev.dmy_long}. Dossier APA n° {ID.dossier}.\n"
        "Aides : IDE quotidienne ({DR.Lovenox}), portage des repas.\n"
        + c.pick("Retour à domicile possible.", "Entrée en EHPAD envisagée en {D.next.my}.")
        + "\nAssistante sociale : {O2.full}\n"
    )


def consultation_anesthesie(c: NoteContext) -> str:
    return (
        "CONSULTATION D'ANESTHÉSIE\nDate : {D.note.dmy_abbr}\n"
        + "Intervention prévue : {PROC.0} le {D.next.dmy_abbr}, opérateur {TC2} {C2.full}.\n"
        "Patient : {P.FAMILY_noaccent} {P.given} ({NE} le {BD.any}) - NDA {ID.nda}\n\n"
        "{H.Antécédents} : {COND.0}, {COND.1}. {SMOKE}.\n"
        "{H.Allergies} : {ALG.0}.\n"
        "{H.Traitement} : {MED.0} (arrêt 48 h avant), {DR.Kardégic} à poursuivre.\n"
        "Biologie du {D.lab.any} : {LAB.0} {LABV.0}, {T.NFS} normale.\n"
        "ASA 2. Intubation prévisible facile. Anesthésiste : {TC1} {C1.initial_family}.\n"
    )


def courriel_secretariat(c: NoteContext) -> str:
    return (
        "De : {EM.C2}\nÀ : {EM.C1}\nDate : {D.note.weekday_dmy} 09:12\n"
        "Objet : RDV {P.FAMILY_initial}\n\n"
        "Bonjour {TC1} {C1.family},\n\n"
        + ("La patiente" if c.female else "Le patient") + " {P.*} (IPP {ID.ipp}) "
        "demande à décaler son rendez-vous du {D.next.noyear} au " + c.pick(
            "{D.next2.written}", "{D.next2.num}") + ". Son {REL1} peut l'accompagner ({PH.R1.any}).\n"
        "Pour mémoire, dernier {T.scanner thoracique} en {D.prev.my}, {LAB.0} à {LABV.0}.\n\n"
        "Bien cordialement,\n{O1.full}\nSecrétariat de {SPEC2}\n"
    )


def sortie_ssr(c: NoteContext) -> str:
    return (
        "Lettre de liaison - sortie de SSR\n\n"
        "{TP} {P.*} - {NE} le {BD.any}\nINS {ID.nir_spaced}\n"
        "Hospitalisé(e) du {D.adm.dmy_long} au {D.dis.weekday_dmy}.\n\n"
        "{H.Synthèse} : rééducation après {PROC.0}. {COND.0} stable sous {MED.0}.\n"
        "{COND.1} : {MED.1}. Vaccin : {IMM.0}.\n"
        "Marche avec canne, autonome pour la toilette.\n\n"
        "Suite : kinésithérapie à domicile ({O1.full}, {PH.O1.any}); "
        "{T.bilan hépatique} le {D.next.any}; consultation {TC2} {C2.*} en {D.next2.my}.\n"
        "Contact : {R1.*} ({REL1}), {EM.R1}.\n\n{TC1} {C1.full_noaccent}\n"
    )


TEMPLATES: dict[str, tuple[str, Callable[[NoteContext], str]]] = {
    "fr_lettre_confrere": ("letter", lettre_confrere),
    "fr_crh": ("discharge", crh),
    "fr_transmissions": ("nurse", transmissions),
    "fr_commentaire_labo": ("lab", commentaire_labo),
    "fr_adressage": ("referral", adressage),
    "fr_ordonnance": ("prescription", ordonnance),
    "fr_urgences": ("er", urgences),
    "fr_appel": ("phone", appel),
    "fr_sections_markdown": ("markdown", sections_markdown),
    "fr_consultation_cardio": ("letter", consultation_cardio),
    "fr_note_sociale": ("progress", note_sociale),
    "fr_consultation_anesthesie": ("progress", consultation_anesthesie),
    "fr_courriel_secretariat": ("phone", courriel_secretariat),
    "fr_sortie_ssr": ("discharge", sortie_ssr),
}
