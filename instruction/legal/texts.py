"""The French default texts of the legal pages, in the markup of ``markup.render``, built from the
service's identity and the configuration (the retention periods come from the configuration, so
the page says what the purge really does)."""

from __future__ import annotations

from datetime import date

from flask import current_app

from instruction.rules.formatting import format_date_fr, format_integer
from instruction.settings.services import Identity

SERVICE_NAME = "Aides numériques — Région Bourgogne-Franche-Comté"

# What the audit measured and could not fix yet (the déclaration d'accessibilité lists them).
KNOWN_GAPS = (
    "Les courriers au format PDF (accusés de réception, lettres de décision, ordres du jour) "
    "n'ont pas été vérifiés avec un lecteur d'écran : leur structure (titres, ordre de lecture) "
    "peut être incomplète (critères 13.3 du RGAA).",
    "Les pièces justificatives déposées par les demandeurs (PDF, images) ne sont pas contrôlées : "
    "elles sont montrées telles qu'elles ont été envoyées.",
    "Sur un écran étroit, certains tableaux larges (historique d'un dossier, dépenses, enveloppes) "
    "défilent horizontalement dans leur cadre ; ce cadre est atteignable au clavier.",
    "Aucun parcours n'a encore été testé avec un lecteur d'écran (NVDA, VoiceOver) par des "
    "utilisateurs : l'audit par critères du RGAA reste à faire.",
)


def _years(days: int) -> str:
    if days % 365 == 0 and days >= 365:
        years = days // 365
        return f"{format_integer(days)} jours ({years} an{'s' if years > 1 else ''})"
    return f"{format_integer(days)} jours"


def retention_periods() -> list[tuple[str, str]]:
    """(data, how long it is kept), from the configuration."""
    config = current_app.config
    remember = config["REMEMBER_COOKIE_DURATION"].days
    return [
        ("Pièces justificatives et pièces jointes aux messages",
         f"{_years(config['DOCUMENT_RETENTION_DAYS'])} après la clôture du dossier (versement final, refus, "
         "retrait, annulation), puis effacées automatiquement chaque nuit"),
        ("Dossiers, décisions, actes et leur historique",
         "conservés comme archives publiques (Code du patrimoine) : ils fondent les décisions et les versements"),
        ("Compte (nom, adresse électronique, collectivité, rôle)",
         "tant que le compte sert ; à la demande de la personne, l'administrateur désactive le compte et "
         "efface les données personnelles qui ne sont pas nécessaires aux dossiers"),
        ("Cookie de session", "jusqu'à la fermeture du navigateur ou la déconnexion"),
        ("Cookie « Se souvenir de moi »", f"{format_integer(remember)} jours au plus"),
    ]


def audit_date() -> date:
    return date.fromisoformat(current_app.config["ACCESSIBILITY_AUDIT_DATE"])


def legal_notice(identity: Identity) -> str:
    return "\n\n".join([
        "## Éditeur du service",
        f"{identity.authority_name}\n{identity.postal_address}\nTéléphone : {identity.telephone}\n"
        f"Adresse électronique : {identity.email}",
        "## Directeur de la publication",
        f"{identity.signatory_name}, {identity.signatory_title}.",
        "## Service responsable",
        f"{identity.service_name}. Pour toute question sur le service ou sur un dossier : {identity.email}.",
        "## Hébergement",
        f"Le service est hébergé pour le compte de l'éditeur. Le nom, l'adresse et le téléphone de "
        f"l'hébergeur sont communiqués sur simple demande à {identity.email}.",
        "## Données territoriales et contenus",
        "Les populations et le découpage du territoire proviennent de l'INSEE et de la DGCL "
        "(Licence Ouverte). Les textes du service appartiennent à l'éditeur ; leur reproduction est "
        "libre avec mention de la source.",
    ])


def privacy_notice(identity: Identity) -> str:
    """Without the retention periods: the page shows them from the configuration, always."""
    return "\n\n".join([
        "## Responsable du traitement",
        f"{identity.authority_name}, {identity.postal_address.replace(chr(10), ', ')}.",
        "## Pourquoi ces données",
        "Instruire les demandes de subvention des collectivités (communes, EPCI, SIVOS) du programme "
        "d'aides numériques : vérifier qui dépose, calculer et attribuer l'aide, verser les "
        "montants, écrire aux demandeurs. La base légale est la mission d'intérêt public de la "
        "Région (article 6-1-e du RGPD). Aucune donnée n'est vendue ni utilisée à des fins "
        "commerciales ; aucune décision n'est prise de façon entièrement automatisée.",
        "## Ce qui est collecté",
        "- Pour chaque compte : nom et prénom, adresse électronique, collectivité, rôle, mot de "
        "passe (seule une empreinte est gardée), pour les agents de la Région le secret de la "
        "double authentification.\n"
        "- Pour chaque dossier : les dépenses déclarées, les pièces justificatives, les messages "
        "échangés, et qui a fait quoi et quand (historique).\n"
        "- Pour la sécurité : la date de la dernière connexion ; l'adresse IP sert seulement à limiter le nombre de tentatives de "
        "connexion et d'inscription (compteurs temporaires).",
        "## Qui les voit",
        "Les agents de votre collectivité qui ont un compte validé, les agents instructeurs, le "
        "service des finances et les élus de la commission permanente de la Région, chacun pour ce "
        "qui relève de son rôle. Elles ne sont transmises à aucun tiers, sauf obligation légale "
        "(contrôle des comptes publics).",
        "## Vos droits",
        "Vous pouvez demander l'accès à vos données, leur rectification, leur effacement quand la "
        "loi ne nous oblige pas à les garder, la limitation du traitement, et vous y opposer. "
        f"Écrivez à {identity.email} ou à {identity.service_name}, "
        f"{identity.postal_address.replace(chr(10), ', ')}. Nous répondons dans un délai d'un mois.",
        "Si vous estimez, après nous avoir contactés, que vos droits ne sont pas respectés, vous "
        "pouvez adresser une réclamation à la CNIL (Commission nationale de l'informatique et des "
        "libertés, 3 place de Fontenoy, TSA 80715, 75334 Paris Cedex 07, www.cnil.fr).",
        "## Cookies",
        "Le service n'utilise que des cookies nécessaires à son fonctionnement (session, et "
        "« Se souvenir de moi » si vous le cochez) : aucun cookie de mesure d'audience ni de tiers.",
    ])


def accessibility_statement(identity: Identity) -> str:
    audited = format_date_fr(audit_date())
    gaps = "\n".join(f"- {gap}" for gap in KNOWN_GAPS)
    return "\n\n".join([
        f"{identity.authority_name} s'engage à rendre ses services numériques accessibles, "
        "conformément à l'article 47 de la loi n° 2005-102 du 11 février 2005. Cette déclaration "
        f"d'accessibilité s'applique au service « {SERVICE_NAME} ».",
        "## État de conformité",
        f"Le service « {SERVICE_NAME} » est partiellement conforme avec le référentiel général "
        "d'amélioration de l'accessibilité (RGAA), version 4.1, en raison des non-conformités et "
        "des dérogations énumérées ci-dessous.",
        "## Résultats des tests",
        f"Audit interne du {audited} : chaque page des parcours (demandeur, instruction, finances, "
        "administration), dans chaque état atteint, erreurs affichées comprises, en largeur de "
        "bureau et à 320 pixels, est testée automatiquement avec axe-core (règles WCAG 2.0 et 2.1, "
        "niveaux A et AA) dans Chromium ; le clavier, le focus visible et l'annonce des erreurs ont "
        "été vérifiés à la main. Aucune erreur grave ou critique n'est relevée par ces tests. "
        "L'audit complet par critères du RGAA n'a pas encore été fait : aucun taux de conformité "
        "n'est donc publié.",
        "## Contenus non accessibles",
        gaps,
        "## Établissement de cette déclaration",
        f"Cette déclaration a été établie le {audited}. Technologies utilisées : HTML5, CSS, "
        "JavaScript (le service reste utilisable sans JavaScript). Environnement de test : Chromium "
        "sans interface, axe-core, navigation au clavier, largeurs de 320 à 1 280 pixels.",
        "## Retour d'information et contact",
        "Si vous n'arrivez pas à accéder à un contenu ou à un service, contactez-nous pour être "
        f"orienté vers une alternative accessible ou obtenir le contenu sous une autre forme : "
        f"{identity.email}, {identity.telephone}, ou par courrier : {identity.service_name}, "
        f"{identity.postal_address.replace(chr(10), ', ')}.",
        "## Voies de recours",
        "Si vous nous avez signalé un défaut d'accessibilité qui vous empêche d'accéder à un "
        "contenu ou à un service et que vous n'avez pas obtenu de réponse satisfaisante, vous "
        "pouvez saisir le Défenseur des droits :",
        "- par le formulaire en ligne du Défenseur des droits (www.defenseurdesdroits.fr) ;\n"
        "- en contactant le délégué du Défenseur des droits de votre région ;\n"
        "- par téléphone au 09 69 39 00 00 ;\n"
        "- par courrier, gratuitement, sans affranchissement : Défenseur des droits, Libre réponse "
        "71120, 75342 Paris CEDEX 07.",
    ])
