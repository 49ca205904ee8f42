from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.accounts.models import User
from instruction.audit.chain import seal_journal
from instruction.campaigns.models import Campaign
from instruction.db import Base, Money, UTCDateTime, check_in, clock_now
from instruction.territory.models import Collectivite

STATES = (
    "draft", "received", "incomplete", "eligible", "granted", "paid",
    "ineligible", "refused", "withdrawn", "expired",
)
STATE_LABELS = {
    "draft": "Brouillon",
    "received": "Reçu",
    "incomplete": "Pièces demandées",
    "eligible": "Éligible",
    "granted": "Attribué",
    "paid": "Versé",
    "ineligible": "Inéligible",
    "refused": "Refusé",
    "withdrawn": "Retiré",
    "expired": "Expiré",
}
CATEGORIES = ("equipement", "logiciel", "licence", "cablage")
CATEGORY_LABELS = {
    "equipement": "Équipement",
    "logiciel": "Logiciel",
    "licence": "Licence",
    "cablage": "Travaux de câblage",
}


class Dossier(Base):
    __tablename__ = "dossier"
    __table_args__ = (
        CheckConstraint(check_in("state", STATES), name="state"),
        CheckConstraint("aid_number BETWEEN 1 AND 5", name="aid_number"),
        CheckConstraint("state IN ('draft', 'expired') OR submitted_at IS NOT NULL", name="submitted"),
        CheckConstraint("state NOT IN ('granted', 'paid') OR granted_amount IS NOT NULL", name="granted_has_amount"),
        CheckConstraint("state <> 'paid' OR paid_amount IS NOT NULL", name="paid_has_amount"),
        CheckConstraint("requested_amount IS NULL OR requested_amount >= 0", name="requested_positive"),
        CheckConstraint("computed_amount IS NULL OR computed_amount >= 0", name="computed_positive"),
        CheckConstraint("granted_amount IS NULL OR granted_amount >= 0", name="granted_positive"),
        CheckConstraint("paid_amount IS NULL OR paid_amount >= 0", name="paid_positive"),
        # NULLs included: a paid amount needs a granted amount to stand under.
        CheckConstraint("paid_amount IS NULL OR (granted_amount IS NOT NULL AND paid_amount <= granted_amount)",
                        name="paid_within_grant"),
        CheckConstraint("paid_amount IS NULL OR state IN ('granted', 'paid')", name="paid_only_when_granted"),
        Index("ix_dossier_state_submitted", "state", "submitted_at"),
        # The queue: its default order walked in the index (state read from it), and its tab counts.
        Index("ix_dossier_queue_order", "submitted_at", "id", "state"),
        Index("ix_dossier_state_assignee", "state", "assigned_to_id"),
        # Search in references (``%term%``): a trigram index on PostgreSQL, a plain one on SQLite.
        Index("ix_dossier_reference_trgm", "reference", postgresql_using="gin",
              postgresql_ops={"reference": "gin_trgm_ops"}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(30), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    aid_number: Mapped[int]
    collectivite_id: Mapped[int] = mapped_column(ForeignKey("collectivite.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    title: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now, onupdate=clock_now)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Legal acts (instruction/acts): when the requested documents were last provided, the day
    # they are due while incomplete, and the day silence becomes an implicit rejection (open
    # dossiers only: set at submission and completion, cleared by a request or a decision).
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    documents_due_on: Mapped[date | None]
    implicit_decision_on: Mapped[date | None] = mapped_column(index=True)
    # A draft its applicant deleted: emptied and hidden from everyone; the row stays for the
    # append-only audit trail.
    discarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Population frozen at submission, with its source and year.
    population: Mapped[int | None]
    population_source: Mapped[str | None] = mapped_column(String(200))
    population_year: Mapped[int | None]

    requested_amount: Mapped[Decimal | None] = mapped_column(Money)
    computed_amount: Mapped[Decimal | None] = mapped_column(Money)
    granted_amount: Mapped[Decimal | None] = mapped_column(Money)
    paid_amount: Mapped[Decimal | None] = mapped_column(Money)
    # Token of the form that created the draft: a double click never creates two dossiers.
    client_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Key of the cap this dossier counts toward (e.g. ``epci-territoire:200000925``), set at submission.
    cap_scope: Mapped[str | None] = mapped_column(String(60), index=True)
    # Rule evaluation frozen when declared eligible (findings, base, amounts, parameters version).
    evaluation: Mapped[dict | None] = mapped_column(JSON)
    # A later deadline granted by an admin to this dossier alone (exclusive, like the campaign's).
    extended_deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[Campaign] = relationship()
    collectivite: Mapped[Collectivite] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    lines: Mapped[list[ExpenseLine]] = relationship(
        back_populates="dossier", order_by="ExpenseLine.id", cascade="all, delete-orphan"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="dossier", order_by="Document.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[AuditEvent]] = relationship(
        back_populates="dossier", order_by="AuditEvent.id", cascade="save-update, merge"
    )  # never deleted with the dossier: the audit trail is append-only
    payments: Mapped[list[Payment]] = relationship(
        back_populates="dossier", order_by="Payment.id", cascade="all, delete-orphan"
    )
    messages: Mapped[list[DossierMessage]] = relationship(
        back_populates="dossier", order_by="DossierMessage.id", cascade="all, delete-orphan"
    )

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


class ExpenseLine(Base):
    __tablename__ = "expense_line"
    __table_args__ = (
        CheckConstraint(check_in("category", CATEGORIES), name="category"),
        CheckConstraint("amount_ht >= 0", name="amount_positive"),
        CheckConstraint("pack IS NULL OR pack BETWEEN 1 AND 3", name="pack"),
        CheckConstraint("months IS NULL OR months > 0", name="months_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(300))
    amount_ht: Mapped[Decimal] = mapped_column(Money)
    pack: Mapped[int | None]
    months: Mapped[int | None]

    dossier: Mapped[Dossier] = relationship(back_populates="lines")
    documents: Mapped[list[Document]] = relationship(back_populates="line", order_by="Document.id")

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]


class Document(Base):
    """An uploaded invoice or quote: stored outside the web root under a random key."""

    __tablename__ = "document"
    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("expense_line.id", ondelete="SET NULL"), index=True)
    original_name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    # The file was deleted at the end of its retention period (documents.retention); the row stays.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Attached to a message of the thread (not to an expense line).
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("dossier_message.id", ondelete="SET NULL"), index=True)

    dossier: Mapped[Dossier] = relationship(back_populates="documents")
    line: Mapped[ExpenseLine | None] = relationship(back_populates="documents")
    message: Mapped[DossierMessage | None] = relationship(back_populates="attachments")
    uploaded_by: Mapped[User | None] = relationship()


class AuditEvent(Base):
    """One row per state change or notable action, written in the same transaction.

    A dossier's events have a state (``to_state``); an administration action may have no dossier:
    it names its subject (``subject_kind``, ``subject_id`` and a label as it was at the event)
    and keeps what changed (``before``, ``after``)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        CheckConstraint(f"from_state IS NULL OR {check_in('from_state', STATES)}", name="from_state"),
        CheckConstraint(f"to_state IS NULL OR {check_in('to_state', STATES)}", name="to_state"),
        CheckConstraint("dossier_id IS NULL OR to_state IS NOT NULL", name="dossier_event_has_state"),
        CheckConstraint("dossier_id IS NOT NULL OR subject_kind IS NOT NULL", name="has_subject"),
        Index("ix_audit_event_subject", "subject_kind", "subject_id"),
    )
    # Append-only and hash-chained (``instruction.audit.chain``): one INSERT at a time, so that each
    # row is linked to the one before it.
    __mapper_args__ = {"batch": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # one successor: no fork
    hash: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str | None] = mapped_column(String(30))
    subject_id: Mapped[int | None]
    subject_label: Mapped[str | None] = mapped_column(String(300))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)

    dossier: Mapped[Dossier | None] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


seal_journal(AuditEvent)  # hash-chained and append-only (instruction.audit.chain)


MESSAGE_KINDS = ("message", "request_documents")


class DossierMessage(Base):
    """A message of the dossier's thread, between the applicant's agents and the Region's staff.

    ``from_staff`` is the side of the author when it was written; ``read_at`` / ``read_by`` the
    first time someone of the other side opened it (the read receipt). A request for documents is
    a message of kind ``request_documents`` with the date by which to answer (``due_on``).
    """

    __tablename__ = "dossier_message"
    __table_args__ = (CheckConstraint(check_in("kind", MESSAGE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    kind: Mapped[str] = mapped_column(String(20), default="message")
    from_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    due_on: Mapped[date | None]
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    dossier: Mapped[Dossier] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    read_by: Mapped[User | None] = relationship(foreign_keys=[read_by_id])
    attachments: Mapped[list[Document]] = relationship(back_populates="message", order_by="Document.id")


class DossierFollower(Base):
    """A staff member who follows a dossier: told when it is completed or withdrawn, and of its
    applicant's messages (``dossiers.team``). Staff-only: never shown to applicants."""

    __tablename__ = "dossier_follower"

    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class Envelope(Base):
    """What one cap has committed: aid × cap scope within a campaign.

    Grants consume it with a single conditional UPDATE (``consumed + x <= cap_limit``), which is
    what keeps concurrent grants under the cap on PostgreSQL and SQLite alike. ``cap_limit`` is
    the cap in force (``envelopes.cap_limit``), written before each grant; a dated lowering may
    leave it below ``consumed`` (reported as over the cap), so no CHECK ties the two.
    """

    __tablename__ = "envelope"
    __table_args__ = (
        UniqueConstraint("campaign_id", "aid_number", "scope"),
        CheckConstraint("consumed >= 0", name="consumed_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    aid_number: Mapped[int]
    scope: Mapped[str] = mapped_column(String(60))
    cap_limit: Mapped[Decimal] = mapped_column(Money)
    consumed: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))


class PackGrant(Base):
    """Aid 1: each pack is granted at most once per commune, over all its dossiers (DB-enforced)."""

    __tablename__ = "pack_grant"
    __table_args__ = (
        UniqueConstraint("campaign_id", "collectivite_id", "pack"),
        CheckConstraint("pack BETWEEN 1 AND 3", name="pack"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    collectivite_id: Mapped[int] = mapped_column(ForeignKey("collectivite.id"))
    pack: Mapped[int]
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)


class Payment(Base):
    """A versement of a granted dossier; the final one marks it paid.

    A payment recorded by mistake is cancelled (never deleted): it then counts for nothing. Triggers
    (see the migration ``payments_serialised``) refuse a payment on a dossier that is not granted or
    paid and a total of payments above the granted amount; the mandate reference is unique per
    budget year among the payments that count.
    """

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("cancelled_at IS NULL OR cancel_reason IS NOT NULL", name="cancel_has_reason"),
        Index("ux_payment_reference_year", "budget_year", "reference", unique=True,
              postgresql_where=text("cancelled_at IS NULL"), sqlite_where=text("cancelled_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    paid_on: Mapped[date]
    reference: Mapped[str] = mapped_column(String(100))
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    # The budget year (exercice) of the mandate: the calendar year of ``paid_on``.
    budget_year: Mapped[int]
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    dossier: Mapped[Dossier] = relationship(back_populates="payments")
    recorded_by: Mapped[User | None] = relationship(foreign_keys=[recorded_by_id])
    cancelled_by: Mapped[User | None] = relationship(foreign_keys=[cancelled_by_id])

    @property
    def counts(self) -> bool:
        return self.cancelled_at is None


class OperationToken(Base):
    """The one-time token of a back-office form that moves money: the same token again (a double
    click, a replayed POST) finds its row and does nothing a second time."""

    __tablename__ = "operation_token"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime)
