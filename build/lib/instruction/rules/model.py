"""Inputs and outputs of the rule engine: frozen dataclasses, money as Decimal."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from instruction.rules.money import ZERO, to_cents

KINDS = ("commune", "epci", "sivos")
CATEGORIES = ("equipement", "logiciel", "licence", "cablage")


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")


@dataclass(frozen=True)
class Applicant:
    """Who applies, with the territory facts the rules need (frozen at submission by the app).

    ``id`` is the INSEE code of a commune, the SIREN of an EPCI or SIVOS, or the name of an ad hoc
    SIVOS. ``epci_*`` describe the EPCI the applicant belongs to: for an EPCI, itself (filled in
    from ``id``/``name``/``population`` when left out); for a SIVOS, the EPCI it is attached to.
    """

    kind: str
    id: str
    name: str
    population: int | None = None
    epci_siren: str | None = None
    epci_name: str | None = None
    epci_population: int | None = None
    is_ville_centre: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown applicant kind {self.kind!r} (expected one of {KINDS})")
        if not self.id or not isinstance(self.id, str):
            raise ValueError("an applicant needs a non-empty id")
        _check_count("population", self.population)
        _check_count("epci_population", self.epci_population)
        if self.kind == "epci":
            own = {"epci_siren": self.id, "epci_name": self.name,
                   "epci_population": self.population}
            for name, expected in own.items():
                value = getattr(self, name)
                if value is None:
                    object.__setattr__(self, name, expected)
                elif value != expected:
                    raise ValueError(f"an EPCI's {name} must be its own ({expected!r}), got {value!r}")


@dataclass(frozen=True)
class ExpenseLine:
    """One declared expense, HT. ``amount_ht`` is normalised to two places ("10" == "10.00")."""

    category: str
    amount_ht: Decimal
    label: str = ""
    pack: int | None = None
    months: int | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown expense category {self.category!r} (expected one of {CATEGORIES})")
        amount = to_cents(self.amount_ht)
        if amount < 0:
            raise ValueError(f"an expense amount cannot be negative, got {amount}")
        object.__setattr__(self, "amount_ht", amount)
        for name in ("pack", "months"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")


@dataclass(frozen=True)
class Consumption:
    """What is already consumed in the dossier's cap scope, for the same campaign and aid.

    ``packs_granted``: for aid 1, the packs already granted to the commune. ``scope``, when given,
    must equal the dossier's cap scope: a guard against passing another envelope's figures.
    """

    consumed: Decimal = ZERO
    packs_granted: frozenset[int] = frozenset()
    scope: str | None = None
    # The envelope's cap in force at the evaluation, when the caller knows it (a dated change of
    # the cap after the submission); by default the aid's cap at the submission instant.
    cap_limit: Decimal | None = None

    def __post_init__(self) -> None:
        consumed = to_cents(self.consumed)
        if consumed < 0:
            raise ValueError(f"consumption cannot be negative, got {consumed}")
        object.__setattr__(self, "consumed", consumed)
        object.__setattr__(self, "packs_granted", frozenset(self.packs_granted))


@dataclass(frozen=True)
class Finding:
    """One condition checked. ``blocking``: failing it makes the dossier ineligible.

    A failed non-blocking finding reduces the amount (an excluded line, a prorated licence, a pack
    already granted, a cap almost reached) without making the dossier ineligible.
    """

    code: str
    ok: bool
    message: str
    blocking: bool


@dataclass(frozen=True)
class CapState:
    scope: str
    limit: Decimal
    consumed_before: Decimal
    consumed_after: Decimal


@dataclass(frozen=True)
class Decision:
    eligible: bool
    findings: tuple[Finding, ...]
    eligible_base: Decimal
    computed_amount: Decimal
    amount: Decimal
    cap: CapState
    packs_granted: frozenset[int] = field(default_factory=frozenset)
    parameters_version: str = ""

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.ok)
