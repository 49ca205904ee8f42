from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from instruction.accounts.models import User
from instruction.db import Base, UTCDateTime, check_in, clock_now

EXPORT_FORMATS = ("csv", "xlsx")
EXPORT_STATUSES = ("queued", "running", "ready", "failed", "purged")
STATUS_LABELS = {"queued": "En attente", "running": "En préparation", "ready": "Prêt",
                 "failed": "Échec", "purged": "Supprimé"}


class ExportJob(Base):
    """An export of a queue view too large to be sent at once, built by the worker into a file.

    ``params`` are the view's URL parameters (filters, search, tab, sort); the rows are those its
    author may see, read again with the author's role when the file is built. ``rows_done`` out
    of ``rows_total`` is the progress; ``heartbeat_at`` the last batch written (a job whose worker
    died is taken again). A ready file is kept until ``expires_at`` (EXPORT_RETENTION_HOURS),
    then deleted by the purge; the row stays, ``purged``."""

    __tablename__ = "export_job"
    __table_args__ = (
        CheckConstraint(check_in("format", EXPORT_FORMATS), name="format"),
        CheckConstraint(check_in("status", EXPORT_STATUSES), name="status"),
        CheckConstraint("rows_done >= 0", name="rows_done_positive"),
        CheckConstraint("status <> 'ready' OR (storage_key IS NOT NULL AND expires_at IS NOT NULL "
                        "AND finished_at IS NOT NULL)", name="ready_has_file"),
        CheckConstraint("status <> 'purged' OR purged_at IS NOT NULL", name="purged_has_instant"),
        Index("ix_export_job_author_created", "author_id", "created_at"),
        Index("ix_export_job_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(4))
    tab: Mapped[str] = mapped_column(String(30))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    rows_total: Mapped[int | None]
    rows_done: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=clock_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    storage_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    file_name: Mapped[str | None] = mapped_column(String(120))
    size_bytes: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)

    author: Mapped[User] = relationship()

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def in_progress(self) -> bool:
        return self.status in ("queued", "running")
