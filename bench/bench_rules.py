"""Benchmark of the rule engine and the simulator (pure: no database needed).

Run: .venv/bin/python bench/bench_rules.py

Prints the median and p95 of one evaluation per aid, and of simulating sequences of 100 and 1,000
dossiers sharing envelopes, with the ratio per dossier between the two (≈ 1 means linear: the
cumulation across dossiers costs nothing per dossier). Compare ratios, not absolute times: the
machine is small and noisy.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

from instruction.rules import Applicant, Consumption, ExpenseLine, evaluate, load_campaign, simulate

PARAMS = load_campaign("pair-2021")
AT = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)
COMMUNE = Applicant(kind="commune", id="21001", name="Agencourt", population=416, epci_siren="200070894",
                    epci_name="CC", epci_population=29589)
EPCI = Applicant(kind="epci", id="200000925", name="CC de la Plaine Dijonnaise", population=22152)
CASES = {
    1: (COMMUNE, [ExpenseLine("equipement", Decimal("1800.00"), pack=1),
                  ExpenseLine("licence", Decimal("900.00"), pack=3, months=48)]),
    2: (EPCI, [ExpenseLine("equipement", Decimal("12000.00")), ExpenseLine("logiciel", Decimal("3000.00"))]),
    4: (EPCI, [ExpenseLine("cablage", Decimal("12000.00"))]),
    5: (EPCI, [ExpenseLine("logiciel", Decimal("10000.00"))]),
}


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def payload(n: int) -> dict:
    epcis = ["200000925", "200070894", "242100410"]
    return {"campaign": "pair-2021", "dossiers": [
        {"ref": str(i), "aid": 2 if i % 2 else 4, "beneficiary": {"epci": epcis[i % 3]},
         "submitted_at": "2021-06-01T10:00:00+02:00",
         "expenses": [{"category": "equipement", "amount_ht": "12000.00"}]}
        for i in range(n)]}


def resolve(beneficiary: dict) -> Applicant:
    siren = beneficiary["epci"]
    return Applicant(kind="epci", id=siren, name=siren, population=30000 if siren != "242100410" else 258630)


def main() -> None:
    print("evaluate(), one dossier (µs)      median      p95")
    for aid, (applicant, lines) in CASES.items():
        med, p95 = summary(timed(partial(evaluate, applicant, aid, lines, AT, PARAMS, Consumption()), 2000))
        print(f"  aid {aid}                        {med * 1e6:9.1f}  {p95 * 1e6:9.1f}")
    per_dossier = {}
    for n in (100, 1000):
        data = payload(n)
        med, p95 = summary(timed(partial(simulate, data, resolve), 15 if n == 1000 else 60))
        per_dossier[n] = med / n
        print(f"simulate {n:>5} dossiers (ms)     {med * 1e3:9.2f}  {p95 * 1e3:9.2f}")
    print(f"ratio per dossier 1000 / 100: {per_dossier[1000] / per_dossier[100]:.2f}")


if __name__ == "__main__":
    main()
