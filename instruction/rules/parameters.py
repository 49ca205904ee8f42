"""Campaign parameters: dated rule values (OpenFisca style) loaded from packaged YAML files.

Each rule value is keyed by the Europe/Paris calendar date it takes effect and carries its
reference. ``DatedParameter.value_at`` is the only place that decides which value is in force.
The file format is documented in docs/rules.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from instruction.rules.formatting import format_date_fr
from instruction.rules.model import CATEGORIES, KINDS
from instruction.rules.money import parse_plain_decimal

PARIS = ZoneInfo("Europe/Paris")  # the one time zone of the product: instants are read there
CAP_SCOPES = ("commune", "epci", "epci-territoire", "epci-ville-centre")
POPULATION_BASES = ("applicant", "epci")
_CODE = re.compile(r"[a-z0-9][a-z0-9-]*")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ParameterError(ValueError):
    """A parameter file is malformed, or no value is in force at the instant asked."""


class UnknownCampaignError(LookupError):
    def __init__(self, code: str):
        self.code = code
        known = ", ".join(available_campaigns())
        super().__init__(f"unknown campaign {code!r} (available: {known})")


def paris_date(instant: datetime | date) -> date:
    """The Europe/Paris calendar date of an aware instant (a date is returned as is)."""
    if isinstance(instant, datetime):
        if instant.utcoffset() is None:
            raise ValueError(f"an instant must be timezone-aware, got {instant.isoformat()}")
        return instant.astimezone(PARIS).date()
    return instant


def last_day_before(deadline: datetime) -> date:
    """The last Europe/Paris day before ``deadline`` (the deadline itself is refused)."""
    return paris_date(deadline - timedelta(microseconds=1))


def opening_problem(opens_at: datetime, at: datetime) -> str | None:
    if at < opens_at:
        return (f"La campagne n'est pas encore ouverte : les dossiers sont acceptés à partir du "
                f"{format_date_fr(paris_date(opens_at))}.")
    return None


def deadline_problem(deadline: datetime, at: datetime) -> str | None:
    """THE deadline rule and its message: a submission is accepted strictly before ``deadline``."""
    if at >= deadline:
        return (f"Date limite dépassée : les dépôts étaient possibles jusqu'au "
                f"{format_date_fr(last_day_before(deadline))} inclus.")
    return None


def window_problem(opens_at: datetime, deadline: datetime, at: datetime) -> str | None:
    """Why nothing can be submitted at ``at`` (French), or None inside the window."""
    return opening_problem(opens_at, at) or deadline_problem(deadline, at)


@dataclass(frozen=True)
class DatedValue:
    start: date
    value: Any
    reference: str


@dataclass(frozen=True)
class DatedParameter:
    name: str
    values: tuple[DatedValue, ...]  # sorted by start date

    def entry_at(self, instant: datetime | date) -> DatedValue:
        """The value in force at ``instant``: the latest whose start date <= its Paris date."""
        day = paris_date(instant)
        in_force = [entry for entry in self.values if entry.start <= day]
        if not in_force:
            raise ParameterError(f"{self.name}: no value in force on {day.isoformat()}")
        return in_force[-1]

    def value_at(self, instant: datetime | date) -> Any:
        return self.entry_at(instant).value


@dataclass(frozen=True)
class Pack:
    number: int
    label: str
    amount: Decimal


@dataclass(frozen=True)
class AidRules:
    """The rule values of one aid in force at one instant (what the engine reads)."""

    aid: int
    title: str
    cap_scope: str
    beneficiary_kinds: tuple[str, ...]
    population_basis: str
    population_below: int
    ville_centre_only: bool
    eligible_categories: tuple[str, ...]
    cap_amount: Decimal
    rate: Decimal | None = None
    packs: tuple[Pack, ...] = ()
    licence_max_months: int | None = None
    minimum_project_cost: Decimal | None = None
    programme_amount: Decimal | None = None  # the programme's envelope for the aid (all territories)

    def pack(self, number: int | None) -> Pack | None:
        return next((p for p in self.packs if p.number == number), None)


@dataclass(frozen=True)
class AidParameters:
    """One aid of a campaign. Title and cap scope are fixed for the campaign: the scope names the
    envelope that dossiers consume, so it cannot change while dossiers are consuming it."""

    aid: int
    title: str
    cap_scope: str
    dated: MappingProxyType  # name -> DatedParameter
    # Rules already read, by Paris day: values change from one day to the next, never within one.
    _by_day: dict = field(default_factory=dict, compare=False, repr=False)

    def rules_at(self, instant: datetime | date) -> AidRules:
        day = paris_date(instant)
        found = self._by_day.get(day)
        if found is None:
            values = {name: p.value_at(day) for name, p in self.dated.items()}
            values.setdefault("ville_centre_only", False)
            found = self._by_day[day] = AidRules(aid=self.aid, title=self.title,
                                                 cap_scope=self.cap_scope, **values)
        return found


@dataclass(frozen=True)
class ActsRules:
    """The values of the legal acts in force at one instant (CRPA periods, vote, payment)."""

    implicit_rejection_months: int  # silence becomes an implicit rejection (CRPA L231-4)
    documents_answer_days: int  # time given to provide requested documents (L114-5)
    recourse_months: int  # recours gracieux / contentieux after notification (CJA R421-1)
    payment_request_months: int  # the payment must be asked for within this time of the grant
    grants_need_vote: bool  # grants are voted by the commission permanente
    references: MappingProxyType  # name -> legal reference of the value in force


# The acts' parameters of a file that has no ``acts`` section (docs/rules.md).
ACTS_DEFAULTS = {
    "implicit_rejection_months": (2, "Code des relations entre le public et l'administration, art. L231-4"),
    "documents_answer_days": (30, "Code des relations entre le public et l'administration, art. L114-5"),
    "recourse_months": (2, "Code de justice administrative, art. R421-1"),
    "payment_request_months": (24, "Règlement d'intervention : délai de demande de versement"),
    "grants_need_vote": (False, "Attribution par décision de l'exécutif, sans vote en commission"),
}


@dataclass(frozen=True)
class CampaignParameters:
    """A campaign. Submission is accepted iff ``opens_at <= submitted_at < deadline``."""

    code: str
    title: str
    reference_prefix: str
    reference: str
    opens_at: datetime
    deadline: datetime  # first instant refused (exclusive)
    aids: MappingProxyType  # aid number -> AidParameters
    version: str  # "<code>@<first 12 hex digits of the file's SHA-256>"
    source: str
    acts: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # ``acts`` section

    def has_opened(self, submitted_at: datetime) -> bool:
        return opening_problem(self.opens_at, submitted_at) is None

    def before_deadline(self, submitted_at: datetime) -> bool:
        return deadline_problem(self.deadline, submitted_at) is None

    @property
    def opens_on(self) -> date:
        return paris_date(self.opens_at)

    @property
    def last_day(self) -> date:
        """The last Europe/Paris day on which a submission is accepted."""
        return last_day_before(self.deadline)

    def aid(self, number: int) -> AidParameters:
        try:
            return self.aids[number]
        except KeyError:
            raise ValueError(f"campaign {self.code} has no aid {number!r}") from None

    def rules(self, aid: int, instant: datetime | date) -> AidRules:
        return self.aid(aid).rules_at(instant)

    def acts_at(self, instant: datetime | date) -> ActsRules:
        """The acts' values in force at ``instant`` (defaults for what the file does not date)."""
        values: dict[str, Any] = {}  # int or bool, by name (ActsRules checks the fields)
        references: dict[str, str] = {}
        for name, (value, reference) in ACTS_DEFAULTS.items():
            if name in self.acts:
                entry = self.acts[name].entry_at(instant)
                value, reference = entry.value, entry.reference
            values[name], references[name] = value, reference
        return ActsRules(**values, references=MappingProxyType(references))


# --- YAML loading and validation -------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps dates as strings (we parse them) and refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        for key in keys:
            if keys.count(key) > 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Reader:
    """Validation helpers that name the file and the key path in every error."""

    def __init__(self, source: str):
        self.source = source

    def error(self, path: str, problem: str) -> ParameterError:
        return ParameterError(f"{self.source}: {path}: {problem}")

    def mapping(self, path: str, raw: Any, required: set[str], optional: frozenset = frozenset()):
        if not isinstance(raw, dict):
            raise self.error(path, f"expected a mapping, got {type(raw).__name__}")
        unknown = sorted(map(str, set(raw) - required - optional))
        if unknown:
            raise self.error(path, f"unknown key(s): {', '.join(unknown)}")
        missing = sorted(required - set(raw))
        if missing:
            raise self.error(path, f"missing key(s): {', '.join(map(str, missing))}")
        return raw

    def text(self, path: str, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(path, f"expected a non-empty string, got {raw!r}")
        return raw

    def decimal(self, path: str, raw: Any, max_places: int) -> Decimal:
        if isinstance(raw, float):
            raise self.error(path, f"float {raw!r} is not allowed: write a quoted decimal string")
        try:
            return parse_plain_decimal(raw, max_places)
        except ValueError:
            raise self.error(path, f"expected a non-negative decimal string with at most "
                                   f"{max_places} decimal places (e.g. \"1000.00\"), got {raw!r}") from None

    def amount(self, path: str, raw: Any) -> Decimal:
        return self.decimal(path, raw, 2).quantize(Decimal("0.01"))

    def integer(self, path: str, raw: Any, minimum: int = 1) -> int:
        if type(raw) is not int or raw < minimum:
            raise self.error(path, f"expected an integer >= {minimum}, got {raw!r}")
        return raw

    def boolean(self, path: str, raw: Any) -> bool:
        if not isinstance(raw, bool):
            raise self.error(path, f"expected true or false, got {raw!r}")
        return raw

    def choice(self, path: str, raw: Any, allowed: tuple[str, ...]) -> str:
        if raw not in allowed:
            raise self.error(path, f"unknown value {raw!r} (expected one of: {', '.join(allowed)})")
        return raw

    def choices(self, path: str, raw: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.error(path, f"expected a non-empty list, got {raw!r}")
        values = tuple(self.choice(f"{path}[{i}]", item, allowed) for i, item in enumerate(raw))
        if len(set(values)) != len(values):
            raise self.error(path, "duplicate values")
        return values

    def instant(self, path: str, raw: Any) -> datetime:
        try:
            value = datetime.fromisoformat(self.text(path, raw))
        except ValueError:
            raise self.error(path, f"expected an ISO 8601 instant, got {raw!r}") from None
        if value.utcoffset() is None:
            raise self.error(path, f"the instant {raw!r} needs a UTC offset, e.g. +01:00")
        return value

    def packs(self, path: str, raw: Any) -> tuple[Pack, ...]:
        if not isinstance(raw, dict) or not raw:
            raise self.error(path, f"expected a non-empty mapping of pack number to pack, got {raw!r}")
        packs = []
        for number, spec in raw.items():
            where = f"{path}.{number}"
            self.integer(where, number)
            self.mapping(where, spec, {"label", "amount"})
            packs.append(Pack(number, self.text(f"{where}.label", spec["label"]),
                              self.amount(f"{where}.amount", spec["amount"])))
        return tuple(sorted(packs, key=lambda p: p.number))


def _rate(reader: _Reader, path: str, raw: Any) -> Decimal:
    rate = reader.decimal(path, raw, 4)
    if rate > 1:
        raise reader.error(path, f"a rate is at most 1, got {raw!r}")
    return rate


# Dated rule parameters of an aid: name -> (required?, converter).
_RULES = {
    "beneficiary_kinds": (True, lambda r, p, v: r.choices(p, v, KINDS)),
    "population_basis": (True, lambda r, p, v: r.choice(p, v, POPULATION_BASES)),
    "population_below": (True, lambda r, p, v: r.integer(p, v)),
    "ville_centre_only": (False, lambda r, p, v: r.boolean(p, v)),
    "eligible_categories": (True, lambda r, p, v: r.choices(p, v, CATEGORIES)),
    "cap_amount": (True, lambda r, p, v: r.amount(p, v)),
    "rate": (False, _rate),
    "packs": (False, lambda r, p, v: r.packs(p, v)),
    "licence_max_months": (False, lambda r, p, v: r.integer(p, v)),
    "minimum_project_cost": (False, lambda r, p, v: r.amount(p, v)),
    "programme_amount": (False, lambda r, p, v: r.amount(p, v)),
}


# Dated parameters of the ``acts`` section: name -> converter.
_ACTS = {
    "implicit_rejection_months": lambda r, p, v: r.integer(p, v),
    "documents_answer_days": lambda r, p, v: r.integer(p, v),
    "recourse_months": lambda r, p, v: r.integer(p, v),
    "payment_request_months": lambda r, p, v: r.integer(p, v),
    "grants_need_vote": lambda r, p, v: r.boolean(p, v),
}


def _acts(reader: _Reader, raw: Any) -> MappingProxyType:
    reader.mapping("acts", raw, set(), frozenset(_ACTS))
    return MappingProxyType({name: _dated(reader, f"acts.{name}", raw[name], convert)
                             for name, convert in _ACTS.items() if name in raw})


def _dated(reader: _Reader, path: str, raw: Any, convert) -> DatedParameter:
    if not isinstance(raw, dict) or not raw:
        raise reader.error(path, "expected a mapping of effective dates (YYYY-MM-DD) to "
                                 "{value, reference}")
    entries = []
    for start, entry in raw.items():
        where = f"{path}.{start}"
        if not isinstance(start, str) or not _ISO_DATE.fullmatch(start):
            raise reader.error(where, "an effective date must be written YYYY-MM-DD")
        try:
            day = date.fromisoformat(start)
        except ValueError:
            raise reader.error(where, "not a valid date") from None
        reader.mapping(where, entry, {"value", "reference"})
        entries.append(DatedValue(day, convert(reader, f"{where}.value", entry["value"]),
                                  reader.text(f"{where}.reference", entry["reference"])))
    return DatedParameter(path, tuple(sorted(entries, key=lambda e: e.start)))


def _aid(reader: _Reader, number: Any, raw: Any, opens_on: date) -> AidParameters:
    path = f"aids.{number}"
    if type(number) is not int or not 1 <= number <= 5:
        raise reader.error(path, "aids are numbered 1 to 5")
    required = {"title", "cap_scope"} | {name for name, (req, _) in _RULES.items() if req}
    optional = frozenset(name for name, (req, _) in _RULES.items() if not req)
    reader.mapping(path, raw, required, optional)
    if ("rate" in raw) == ("packs" in raw):
        raise reader.error(path, "give exactly one of rate (a percentage) or packs (flat amounts)")
    dated = {}
    for name, (_, convert) in _RULES.items():
        if name in raw:
            parameter = _dated(reader, f"{path}.{name}", raw[name], convert)
            if parameter.values[0].start > opens_on:
                raise reader.error(f"{path}.{name}", f"no value in force when the campaign opens "
                                                     f"({opens_on.isoformat()})")
            dated[name] = parameter
    return AidParameters(
        aid=number,
        title=reader.text(f"{path}.title", raw["title"]),
        cap_scope=reader.choice(f"{path}.cap_scope", raw["cap_scope"], CAP_SCOPES),
        dated=MappingProxyType(dated),
    )


def parse_campaign(text: str, source: str, expected_code: str | None = None) -> CampaignParameters:
    """Validate and build a campaign from the text of a parameter file; ParameterError if malformed."""
    reader = _Reader(source)
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ParameterError(f"{source}: invalid YAML: {error}") from None
    top = {"code", "title", "reference_prefix", "reference", "opens_at", "deadline", "aids"}
    reader.mapping("(top level)", raw, top, frozenset({"acts"}))
    code = reader.text("code", raw["code"])
    if not _CODE.fullmatch(code) or (expected_code is not None and code != expected_code):
        raise reader.error("code", f"{code!r} must be lowercase letters, digits and dashes"
                                   + (f" and equal the file name ({expected_code!r})"
                                      if expected_code else ""))
    instants = {}
    for key in ("opens_at", "deadline"):
        reader.mapping(key, raw[key], {"value", "reference"})
        reader.text(f"{key}.reference", raw[key]["reference"])
        instants[key] = reader.instant(f"{key}.value", raw[key]["value"])
    opens_at, deadline = instants["opens_at"], instants["deadline"]
    if not opens_at < deadline:
        raise reader.error("deadline", "the deadline must come after opens_at")
    if deadline.astimezone(PARIS).time() != time(0, 0):
        raise reader.error("deadline.value", "the deadline must be a midnight in Europe/Paris "
                                             "(the first instant of the day after the last day)")
    aids = raw["aids"]
    if not isinstance(aids, dict) or not aids:
        raise reader.error("aids", "expected a mapping of aid number to aid")
    opens_on = paris_date(opens_at)
    parsed = {number: _aid(reader, number, spec, opens_on) for number, spec in aids.items()}
    prefix = reader.text("reference_prefix", raw["reference_prefix"])
    if not re.fullmatch(r"[A-Z0-9-]{1,12}", prefix):
        raise reader.error("reference_prefix", "expected 1 to 12 uppercase letters, digits or dashes")
    return CampaignParameters(
        code=code,
        title=reader.text("title", raw["title"]),
        reference_prefix=prefix,
        reference=reader.text("reference", raw["reference"]),
        opens_at=opens_at,
        deadline=deadline,
        aids=MappingProxyType(dict(sorted(parsed.items()))),
        version=f"{code}@{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}",
        source=source,
        acts=_acts(reader, raw["acts"]) if "acts" in raw else MappingProxyType({}),
    )


def _files():
    return resources.files(__package__).joinpath("parameters")


def available_campaigns() -> tuple[str, ...]:
    """Codes of the packaged campaigns, sorted."""
    return tuple(sorted(entry.name[:-5] for entry in _files().iterdir()
                        if entry.name.endswith(".yaml")))


@cache
def load_campaign(code: str) -> CampaignParameters:
    """The packaged campaign ``code`` (cached). UnknownCampaignError, or ParameterError if malformed."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise UnknownCampaignError(str(code))
    resource = _files().joinpath(f"{code}.yaml")
    if not resource.is_file():
        raise UnknownCampaignError(code)
    return parse_campaign(resource.read_text(encoding="utf-8"), f"parameters/{code}.yaml", code)
