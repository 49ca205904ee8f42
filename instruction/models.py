"""Imports every model so that the metadata (and Alembic autogenerate) sees them all."""

from instruction.accounts.models import User  # noqa: F401
from instruction.campaigns.models import Aid, Campaign  # noqa: F401
from instruction.dossiers.models import AuditEvent, Document, Dossier, ExpenseLine  # noqa: F401
from instruction.territory.models import (  # noqa: F401
    Collectivite,
    Commune,
    Departement,
    Epci,
    Sivos,
)
