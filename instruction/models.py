"""Imports every model so that the metadata (and Alembic autogenerate) sees them all."""

import instruction.audit.chain  # noqa: F401  (seals every new audit event into the chain)
from instruction.accounts.models import RecoveryCode, User  # noqa: F401
from instruction.acts.models import LegalAct  # noqa: F401
from instruction.audit.models import AuditVerification  # noqa: F401
from instruction.campaigns.models import Aid, Campaign  # noqa: F401
from instruction.commission.models import CommissionSession, SessionLine  # noqa: F401
from instruction.dossiers.models import (  # noqa: F401
    AuditEvent,
    Document,
    Dossier,
    DossierFollower,
    DossierMessage,
    Envelope,
    ExpenseLine,
    PackGrant,
    Payment,
)
from instruction.exports.models import ExportJob  # noqa: F401
from instruction.notifications.models import Delivery, JobRun, OutboxMessage  # noqa: F401
from instruction.payment_requests.models import PaymentRequest, RealisedExpense  # noqa: F401
from instruction.settings.models import ServiceIdentity  # noqa: F401
from instruction.teamwork.models import (  # noqa: F401
    DossierLabel,
    DossierNote,
    DossierView,
    Label,
    StaffPreference,
)
from instruction.territory.models import (  # noqa: F401
    Collectivite,
    Commune,
    Departement,
    Epci,
    Sivos,
)
