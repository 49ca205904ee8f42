from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.accounts.models import User
from instruction.db import Base, Money, UTCDateTime, check_in, clock_now
from instruction.dossiers.models import CATEGORIES, CATEGORY_LABELS, Document, Dossier, Payment

KINDS = ("acompte", "solde")
KIND_LABELS = {"acompte": "Acompte", "solde": "Solde"}
STATUSES = ("draft", "sent", "returned", "paid")
STATUS_LABELS = {
    "draft": "En préparation",
    "sent": "Envoyée, en attente de la Région",
    "returned": "Renvoyée pour correction",
    "paid": "Versée",
}
OPEN_STATUSES = ("draft", "sent", "returned")
# The text the agent attests on honour (kept on the request as it was attested).
ATTESTATION = ("J'atteste sur l'honneur que les dépenses déclarées ci-dessus ont été réalisées et "
               "effectivement payées par la collectivité, que les factures jointes sont acquittées, et "
               "qu'elles n'ont pas été présentées à un autre financeur au-delà de leur montant.")


class PaymentRequest(Base):
    """A demande de versement of a granted dossier: at most one open at a time (DB-enforced)."""

    __tablename__ = "payment_request"
    __table_args__ = (
        CheckConstraint(check_in("kind", KINDS), name="kind"),
        CheckConstraint(check_in("status", STATUSES), name="status"),
        # Paid by a payment, or a balance settled at 0,00 € (nothing more justified: no payment).
        CheckConstraint("status <> 'paid' OR payment_id IS NOT NULL "
                        "OR (kind = 'solde' AND payable_amount = 0 AND settled_at IS NOT NULL)",
                        name="paid_has_payment"),
        CheckConstraint("status = 'draft' OR (first_sent_at IS NOT NULL AND attested_at IS NOT NULL)",
                        name="sent_attested"),
        CheckConstraint("payable_amount IS NULL OR payable_amount >= 0", name="payable_positive"),
        Index("ux_payment_request_open", "dossier_id", unique=True,
              postgresql_where=text("status <> 'paid'"), sqlite_where=text("status <> 'paid'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    # The first sending decides whether the balance was asked in time (caducité).
    first_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    attestation: Mapped[str | None] = mapped_column(Text)
    attested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the rules computed when it was sent: the payable amount and the findings (French).
    payable_amount: Mapped[Decimal | None] = mapped_column(Money)
    findings: Mapped[list | None] = mapped_column(JSON)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    return_message: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"), unique=True)
    paid_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reduction_reason: Mapped[str | None] = mapped_column(Text)  # paid less than payable: why
    # A balance settled at 0,00 € (``services.settle_at_zero``): when; it has no payment.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    dossier: Mapped[Dossier] = relationship()
    expenses: Mapped[list[RealisedExpense]] = relationship(
        back_populates="request", order_by="RealisedExpense.id", cascade="all, delete-orphan")
    payment: Mapped[Payment | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    returned_by: Mapped[User | None] = relationship(foreign_keys=[returned_by_id])
    paid_by: Mapped[User | None] = relationship(foreign_keys=[paid_by_id])

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def settled_at_zero(self) -> bool:
        """A balance closed at 0,00 €: paid, without a payment."""
        return self.status == "paid" and self.payment_id is None

    @property
    def status_label(self) -> str:
        return "Soldée à 0,00 €" if self.settled_at_zero else STATUS_LABELS[self.status]

    @property
    def editable(self) -> bool:
        return self.status in ("draft", "returned")

    @property
    def declared_total(self) -> Decimal:
        return sum((e.amount_ht for e in self.expenses), Decimal("0.00"))


class RealisedExpense(Base):
    """An expense actually paid, HT, with its paid invoice (facture acquittée)."""

    __tablename__ = "realised_expense"
    __table_args__ = (
        CheckConstraint(check_in("category", CATEGORIES), name="category"),
        CheckConstraint("amount_ht > 0", name="amount_positive"),
        CheckConstraint("pack IS NULL OR pack BETWEEN 1 AND 3", name="pack"),
        CheckConstraint("months IS NULL OR months > 0", name="months_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("payment_request.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(300))
    amount_ht: Mapped[Decimal] = mapped_column(Money)
    pack: Mapped[int | None]
    months: Mapped[int | None]
    invoice_id: Mapped[int] = mapped_column(ForeignKey("document.id"), index=True)

    request: Mapped[PaymentRequest] = relationship(back_populates="expenses")
    invoice: Mapped[Document] = relationship()

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]
