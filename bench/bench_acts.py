"""Benchmark of the legal acts' PDF rendering (WeasyPrint, PDF/A-3b) and of amounts in words.

Run: .venv/bin/python bench/bench_acts.py

Prints the median and p95 of rendering an acknowledgment and a grant letter from their frozen
content (no database: the acts are built in memory), with the ratio of each to the rendering of
a one-line page in the same run (the fixed cost of WeasyPrint), and of 1,000 amounts in words.
Why it matters: the PDF is rendered at the first download or by the `acts` job, never inside a
submission or a grant (docs/decisions.md); this says what a first download costs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal

from instruction import create_app
from instruction.acts.models import LegalAct
from instruction.acts.services import render_pdf
from instruction.rules.acts import amount_in_words

COMMON = {
    "reference": "DEMO-A2-000042", "title": "Serveur de sauvegarde", "issued_on": "2 décembre 2026",
    "beneficiary": {"name": "CC de la Plaine Dijonnaise", "kind": "epci", "siren": "200000925"},
    "campaign": "Campagne de démonstration", "campaign_reference": "Guide des aides numériques",
    "aid_number": 2, "aid_title": "Maîtrise et sécurisation des données", "recourse_months": 2,
    "recourse_reference": "Code de justice administrative, art. R421-1",
}


def timed(function, runs: int) -> list[float]:
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return durations


def summary(name: str, durations: list[float], baseline: float | None) -> None:
    median = statistics.median(durations)
    p95 = sorted(durations)[max(0, int(len(durations) * 0.95) - 1)]
    ratio = f" ×{median / baseline:.1f} the one-line page" if baseline else ""
    print(f"{name:<28} median {median * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms{ratio}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/b.db",
                          "UPLOAD_FOLDER": tmp})
        with app.app_context(), app.test_request_context():
            identity = dict(app.config["SERVICE_IDENTITY"])
            now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
            ack = LegalAct(id=1, dossier_id=1, kind="acknowledgment", issued_at=now, content={
                **COMMON, "identity": identity, "received_on": "28 novembre 2026", "completed_on": None,
                "implicit_decision_on": "28 janvier 2027", "implicit_rejection_months": 2,
                "implicit_rejection_reference": "CRPA, art. L231-4", "requested_amount": "4 000,00 €"})
            grant = LegalAct(id=2, dossier_id=1, kind="grant", issued_at=now, content={
                **COMMON, "identity": identity, "amount": "3 980,80 €",
                "amount_in_words": amount_in_words(Decimal("3980.80")), "computed_amount": "4 000,00 €",
                "eligible_base": "10 000,00 €", "basis": "taux de 40 %", "basis_reference": "aide 2",
                "payment_request_months": 24, "payment_reference": "Règlement", "deliberation": None})
            from weasyprint import HTML

            render_pdf(ack)  # warm-up: fonts, CSS
            one_line = timed(lambda: HTML(string="<p>Bonjour</p>").write_pdf(pdf_variant="pdf/a-3b"), 10)
            baseline = statistics.median(one_line)
            summary("one-line page (baseline)", one_line, None)
            summary("acknowledgment (2 pages)", timed(lambda: render_pdf(ack), 10), baseline)
            summary("grant letter (2 pages)", timed(lambda: render_pdf(grant), 10), baseline)
            amounts = [Decimal(n) / 100 for n in range(0, 100_000_000, 100_003)]
            words = timed(lambda: [amount_in_words(a) for a in amounts], 5)
            summary(f"{len(amounts)} amounts in words", words, None)


if __name__ == "__main__":
    main()
