"""The portal's French wording: states explained, timeline labels, time left before the deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

STATE_EXPLANATIONS = {
    "draft": "Ce dossier est un brouillon : il n'a pas encore été transmis à la Région. Déclarez vos "
             "dépenses, joignez une facture ou un devis à chacune, puis déposez-le avant la date limite. "
             "Tout ce que vous saisissez est enregistré : vous pouvez revenir plus tard.",
    "received": "La Région a bien reçu votre dossier. Il est en cours d'instruction : vous serez prévenu "
                "par courriel de chaque étape. Vous n'avez rien à faire pour le moment.",
    "incomplete": "L'instructeur a besoin de pièces ou d'informations complémentaires (voir sa demande "
                  "ci-dessous). Joignez-les, répondez-lui, puis renvoyez le dossier.",
    "eligible": "Votre dossier remplit les conditions de l'aide. La décision d'attribution est en "
                "préparation.",
    "granted": "La Région vous a attribué une subvention. La lettre de décision précise les conditions "
               "de versement.",
    "paid": "La subvention a été versée. Ce dossier est terminé.",
    "ineligible": "Votre dossier ne remplit pas les conditions de l'aide : le motif figure dans "
                  "l'historique ci-dessous.",
    "refused": "La Région n'a pas retenu votre demande : le motif figure dans l'historique ci-dessous.",
    "withdrawn": "Vous avez retiré ce dossier : il ne sera pas instruit.",
    "expired": "Ce dossier est clos : le brouillon n'a pas été déposé avant la date limite, ou la "
               "subvention est devenue caduque faute de demande du solde dans le délai (voir l'historique).",
}

EVENT_LABELS = {
    "create": "Brouillon créé",
    "submit": "Dossier déposé",
    "request_documents": "Pièces demandées par la Région",
    "resubmit": "Dossier complété et renvoyé",
    "declare_eligible": "Dossier déclaré éligible",
    "declare_ineligible": "Dossier déclaré inéligible",
    "grant": "Subvention attribuée",
    "refuse": "Demande refusée",
    "record_payment": "Versement partiel",
    "record_final_payment": "Versement final",
    "send_payment_request": "Demande de versement envoyée",
    "return_payment_request": "Demande de versement renvoyée pour correction",
    "lapse": "Subvention caduque (solde non demandé dans le délai)",
    "lapse_after_instalments": "Solde caduc : dossier clos aux acomptes versés",
    "withdraw": "Dossier retiré",
    "expire": "Dossier expiré (non déposé à la date limite)",
    "cancel_grant": "Attribution annulée",
    "cancel_payment": "Versement annulé",
    "reopen": "Instruction rouverte",
    "extend_deadline": "Date limite de dépôt prolongée pour ce dossier",
}


def last_minute(deadline: datetime) -> datetime:
    """The deadline as people read it: the last accepted minute ("30 juin 2027 à 23:59")."""
    return deadline - timedelta(minutes=1)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def time_left(deadline: datetime, now: datetime) -> str:
    """"plus que 12 jours", "plus que 5 heures", "plus que 20 minutes", "date limite dépassée"."""
    left = deadline - now
    if left <= timedelta(0):
        return "date limite dépassée"
    if left >= timedelta(days=2):
        return f"plus que {left.days} jours"
    if left >= timedelta(days=1):
        return "plus qu'un jour"
    hours = int(left.total_seconds() // 3600)
    if hours >= 1:
        return "plus qu'une heure" if hours == 1 else f"plus que {hours} heures"
    minutes = max(1, int(left.total_seconds() // 60))
    return "plus qu'une minute" if minutes == 1 else f"plus que {_plural(minutes, 'minute', 'minutes')}"
