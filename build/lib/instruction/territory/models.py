"""Collectivités: one table for communes, EPCI and SIVOS (single-table inheritance).

Every collectivité carries ``epci_id``, the EPCI whose territory it belongs to (itself for an
EPCI), so that "the EPCI, its communes and its SIVOS" is one indexed column.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from instruction.db import Base
from instruction.territory.names import fold

COLLECTIVITE_KINDS = ("commune", "epci", "sivos")
KIND_LABELS = {"commune": "Commune", "epci": "EPCI", "sivos": "SIVOS"}


class Departement(Base):
    __tablename__ = "departement"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


sivos_member = Table(
    "sivos_member",
    Base.metadata,
    Column("sivos_id", ForeignKey("collectivite.id", ondelete="CASCADE"), primary_key=True),
    Column("commune_id", ForeignKey("collectivite.id", ondelete="CASCADE"), primary_key=True),
)


class Collectivite(Base):
    __tablename__ = "collectivite"
    __table_args__ = (
        CheckConstraint("kind IN ('commune', 'epci', 'sivos')", name="kind"),
        CheckConstraint("kind <> 'commune' OR insee IS NOT NULL", name="commune_has_insee"),
        CheckConstraint("kind = 'commune' OR siren IS NOT NULL", name="group_has_siren"),
        CheckConstraint("kind <> 'sivos' OR epci_id IS NOT NULL", name="sivos_has_epci"),
        CheckConstraint("population IS NULL OR population >= 0", name="population_positive"),
        Index("ix_collectivite_name", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    # ``name`` folded for search (no accents nor hyphens), kept in step by ``_fold_name``.
    search_name: Mapped[str] = mapped_column(String(200), default="")
    insee: Mapped[str | None] = mapped_column(String(5), unique=True)
    siren: Mapped[str | None] = mapped_column(String(9), unique=True)
    departement_code: Mapped[str | None] = mapped_column(ForeignKey("departement.code"))
    population: Mapped[int | None]
    population_source: Mapped[str | None] = mapped_column(String(200))
    population_year: Mapped[int | None]
    epci_id: Mapped[int | None] = mapped_column(ForeignKey("collectivite.id"), index=True)
    # EPCI only
    epci_type: Mapped[str | None] = mapped_column(String(10))
    ville_centre_id: Mapped[int | None] = mapped_column(ForeignKey("collectivite.id"))

    __mapper_args__ = {"polymorphic_on": "kind"}

    departement: Mapped[Departement | None] = relationship()
    epci: Mapped[Epci | None] = relationship(
        "Epci", remote_side="Collectivite.id", foreign_keys=[epci_id], post_update=True
    )

    @validates("name")
    def _fold_name(self, key: str, name: str) -> str:
        self.search_name = fold(name)
        return name

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def code(self) -> str:
        """The identifier a person types: INSEE code for a commune, SIREN otherwise."""
        return self.insee if self.kind == "commune" else self.siren

    def __repr__(self) -> str:
        return f"<{self.kind} {self.code} {self.name}>"


class Commune(Collectivite):
    __mapper_args__ = {"polymorphic_identity": "commune"}

    sivos: Mapped[list[Sivos]] = relationship(
        "Sivos", secondary=sivos_member, primaryjoin=lambda: Collectivite.id == sivos_member.c.commune_id,
        secondaryjoin=lambda: Collectivite.id == sivos_member.c.sivos_id, back_populates="members",
        viewonly=True,
    )


class Epci(Collectivite):
    __mapper_args__ = {"polymorphic_identity": "epci"}

    ville_centre: Mapped[Commune | None] = relationship(
        "Commune", foreign_keys=[Collectivite.ville_centre_id], remote_side=Collectivite.id,
        post_update=True,
    )


class Sivos(Collectivite):
    __mapper_args__ = {"polymorphic_identity": "sivos"}

    members: Mapped[list[Commune]] = relationship(
        "Commune", secondary=sivos_member, primaryjoin=lambda: Collectivite.id == sivos_member.c.sivos_id,
        secondaryjoin=lambda: Collectivite.id == sivos_member.c.commune_id,
    )
