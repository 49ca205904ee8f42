"""What each kind of notification is called (in-app list) and the subject of its e-mail.

A kind is the workflow action that caused it (``submit``, ``grant``…), a reminder, the digest
or an account e-mail. Each has ``templates/emails/<kind>.txt`` and ``.html``.
"""

from __future__ import annotations

# kind: (label in the in-app list, e-mail subject; "{reference}" is the dossier's reference)
KINDS: dict[str, tuple[str, str]] = {
    "submit": ("Dossier déposé", "Dossier {reference} : dépôt enregistré"),
    "request_documents": ("Pièces demandées", "Dossier {reference} : des pièces sont demandées"),
    "acknowledgment": ("Accusé de réception", "Dossier {reference} : accusé de réception"),
    "resubmit": ("Dossier complété par le demandeur", "Dossier {reference} : pièces complémentaires reçues"),
    "declare_eligible": ("Dossier déclaré éligible", "Dossier {reference} : dossier éligible"),
    "declare_ineligible": ("Dossier déclaré inéligible", "Dossier {reference} : dossier inéligible"),
    "grant": ("Subvention attribuée", "Dossier {reference} : subvention attribuée"),
    "refuse": ("Demande refusée", "Dossier {reference} : demande refusée"),
    "record_payment": ("Versement enregistré", "Dossier {reference} : versement enregistré"),
    "record_final_payment": ("Versement final enregistré", "Dossier {reference} : versement final enregistré"),
    "cancel_payment": ("Versement annulé", "Dossier {reference} : versement annulé"),
    "send_payment_request": ("Demande de versement envoyée", "Dossier {reference} : demande de versement envoyée"),
    "return_payment_request": ("Demande de versement renvoyée",
                               "Dossier {reference} : demande de versement à corriger"),
    "lapse": ("Subvention caduque", "Dossier {reference} : subvention caduque"),
    "lapse_after_instalments": ("Solde caduc", "Dossier {reference} : solde non demandé, subvention close"),
    "reminder_balance": ("Rappel : solde à demander", "Rappel : dossier {reference}, solde à demander"),
    "withdraw": ("Dossier retiré par le demandeur", "Dossier {reference} : dossier retiré"),
    "expire": ("Brouillon clos à la date limite", "Dossier {reference} : brouillon clos à la date limite"),
    "cancel_grant": ("Attribution annulée", "Dossier {reference} : attribution annulée"),
    "reopen": ("Instruction rouverte", "Dossier {reference} : instruction rouverte"),
    "message_to_applicant": ("Nouveau message de la Région", "Dossier {reference} : nouveau message de la Région"),
    "messages_to_staff": ("Nouveaux messages du demandeur", "Dossier {reference} : message du demandeur"),
    "assigned": ("Dossier attribué", "Dossier {reference} : vous en êtes chargé"),
    "reminder_deadline": ("Rappel : date limite de dépôt proche",
                          "Rappel : dossier {reference} à déposer avant la date limite"),
    "reminder_documents": ("Rappel : pièces toujours attendues",
                           "Rappel : dossier {reference}, pièces toujours attendues"),
    "digest": ("Synthèse quotidienne", "Aides numériques : votre synthèse du jour"),
    "account_confirmation": ("Confirmation du compte", "Confirmez votre adresse électronique"),
    "password_reset": ("Réinitialisation du mot de passe", "Réinitialisation de votre mot de passe"),
    "account_pending": ("Compte demandeur à valider", "Un compte demandeur attend votre validation"),
    "account_approved": ("Compte validé", "Votre compte est validé"),
    "account_refused": ("Demande d'accès refusée", "Votre demande d'accès n'a pas été acceptée"),
    "account_exists": ("Compte déjà existant", "Vous avez déjà un compte sur le portail des aides numériques"),
    "account_invitation": ("Invitation", "Aides numériques : vous êtes invité à créer votre mot de passe"),
    "campaign_dates": ("Dates de la campagne modifiées", "Aides numériques : les dates de dépôt changent"),
    "extend_deadline": ("Date limite prolongée", "Dossier {reference} : date limite de dépôt prolongée"),
    "export_ready": ("Export prêt à télécharger", "Aides numériques : votre export est prêt"),
}
# Sent by e-mail only: never listed in-app (they carry a personal link, or concern an account
# rather than a dossier; the admins and agents find the accounts to approve on their pages).
ACCOUNT_KINDS = ("account_confirmation", "password_reset", "account_pending", "account_approved",
                 "account_refused", "account_exists", "account_invitation")


def label(kind: str) -> str:
    return KINDS.get(kind, (kind, ""))[0]


# A kind whose e-mail says something else when its context has this flag: (kind, flag) -> subject.
VARIANT_SUBJECTS: dict[tuple[str, str], str] = {
    # A balance settled at 0,00 € (no money moved): not « versement final enregistré ».
    ("record_final_payment", "zero_balance"): "Dossier {reference} : solde arrêté à 0,00 €, dossier soldé",
}


def subject(kind: str, reference: str | None, context: dict | None = None) -> str:
    template = KINDS.get(kind, ("", "Aides numériques : notification"))[1]
    for (variant_kind, flag), variant in VARIANT_SUBJECTS.items():
        if variant_kind == kind and (context or {}).get(flag):
            template = variant
    return template.format(reference=reference or "")
