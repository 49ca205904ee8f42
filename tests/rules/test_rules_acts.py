"""Legal acts' rules: the implicit-decision date and amounts in words (expected values by hand)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from instruction.rules.acts import amount_in_words, answer_due_date, implicit_decision_date

PARIS_WINTER = timezone(timedelta(hours=1))
PARIS_SUMMER = timezone(timedelta(hours=2))


@pytest.mark.parametrize("received, completed, expected", [
    # plain case: same day number two months later
    (datetime(2031, 3, 4, 10, 0, tzinfo=UTC), None, date(2031, 5, 4)),
    # completed on 31 December: 31 February does not exist -> last day of February
    (datetime(2030, 11, 2, 9, 0, tzinfo=UTC), datetime(2030, 12, 31, 15, 0, tzinfo=UTC), date(2031, 2, 28)),
    # ... and in a leap year, 29 February
    (datetime(2031, 11, 2, 9, 0, tzinfo=UTC), datetime(2031, 12, 31, 15, 0, tzinfo=UTC), date(2032, 2, 29)),
    # completed on 30 December
    (datetime(2030, 12, 1, 9, 0, tzinfo=UTC), datetime(2030, 12, 30, 8, 0, tzinfo=UTC), date(2031, 2, 28)),
    # completed on 29 February (leap year) -> 29 April
    (datetime(2032, 1, 5, 9, 0, tzinfo=UTC), datetime(2032, 2, 29, 12, 0, tzinfo=UTC), date(2032, 4, 29)),
    # received on 31 December late evening in Paris (still 31 December) -> 28 February
    (datetime(2030, 12, 31, 22, 30, tzinfo=UTC), None, date(2031, 2, 28)),
    # 23:30 UTC on 31 December is already 1 January in Paris -> 1 March
    (datetime(2030, 12, 31, 23, 30, tzinfo=UTC), None, date(2031, 3, 1)),
    # 31 December to 31 December + 2 months across the year: from 31 October, 31 December
    (datetime(2031, 10, 31, 10, 0, tzinfo=UTC), None, date(2031, 12, 31)),
    # the change to summer time (30 March 2031, 02:00 -> 03:00): 22:30 UTC on the 30th is
    # 00:30 on 31 March in Paris (UTC+2), not 23:30 on the 30th (what UTC+1 would give)
    (datetime(2031, 3, 30, 22, 30, tzinfo=UTC), None, date(2031, 5, 31)),
    # the night of the change itself: 01:30 UTC on the 30th is 03:30 CEST, 30 March
    (datetime(2031, 3, 30, 1, 30, tzinfo=UTC), None, date(2031, 5, 30)),
    # an instant given in another offset means the same Paris day
    (datetime(2031, 3, 31, 0, 30, tzinfo=PARIS_SUMMER), None, date(2031, 5, 31)),
    # received 31 August -> 31 October; 31 March -> 31 May; 31 July -> 30 September
    (datetime(2031, 7, 31, 10, 0, tzinfo=UTC), None, date(2031, 9, 30)),
])
def test_implicit_decision_date(received, completed, expected):
    assert implicit_decision_date(received, completed, 2) == expected


def test_the_period_runs_again_from_completion():
    received = datetime(2031, 1, 10, 9, 0, tzinfo=UTC)
    assert implicit_decision_date(received, None, 2) == date(2031, 3, 10)
    assert implicit_decision_date(received, datetime(2031, 2, 20, 9, 0, tzinfo=UTC), 2) == date(2031, 4, 20)
    assert implicit_decision_date(received, None, 3) == date(2031, 4, 10)


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        implicit_decision_date(datetime(2031, 1, 10, 9, 0), None, 2)


def test_answer_due_date_is_a_paris_day():
    # 23:30 UTC on 31 January is 1 February in Paris: + 30 days = 3 March
    assert answer_due_date(datetime(2031, 1, 31, 23, 30, tzinfo=UTC), 30) == date(2031, 3, 3)
    assert answer_due_date(datetime(2031, 1, 31, 12, 0, tzinfo=PARIS_WINTER), 30) == date(2031, 3, 2)


WORDS = [
    ("0.00", "zéro euro"),
    ("1.00", "un euro"),
    ("0.01", "un centime"),
    ("0.50", "cinquante centimes"),
    ("1.01", "un euro et un centime"),
    ("2.00", "deux euros"),
    ("16.00", "seize euros"),
    ("17.00", "dix-sept euros"),
    ("21.00", "vingt et un euros"),
    ("22.00", "vingt-deux euros"),
    ("70.00", "soixante-dix euros"),
    ("71.00", "soixante et onze euros"),
    ("72.00", "soixante-douze euros"),
    ("77.00", "soixante-dix-sept euros"),
    ("80.00", "quatre-vingts euros"),
    ("81.00", "quatre-vingt-un euros"),
    ("89.00", "quatre-vingt-neuf euros"),
    ("90.00", "quatre-vingt-dix euros"),
    ("91.00", "quatre-vingt-onze euros"),
    ("99.99", "quatre-vingt-dix-neuf euros et quatre-vingt-dix-neuf centimes"),
    ("100.00", "cent euros"),
    ("101.00", "cent un euros"),
    ("180.00", "cent quatre-vingts euros"),
    ("200.00", "deux cents euros"),
    ("201.00", "deux cent un euros"),
    ("280.80", "deux cent quatre-vingts euros et quatre-vingts centimes"),
    ("1000.00", "mille euros"),
    ("1001.00", "mille un euros"),
    ("1200.00", "mille deux cents euros"),
    ("2000.00", "deux mille euros"),
    ("2500.00", "deux mille cinq cents euros"),
    ("21000.00", "vingt et un mille euros"),
    ("71071.71", "soixante et onze mille soixante et onze euros et soixante et onze centimes"),
    ("80000.00", "quatre-vingt mille euros"),
    ("80080.00", "quatre-vingt mille quatre-vingts euros"),
    ("100000.00", "cent mille euros"),
    ("200000.00", "deux cent mille euros"),
    ("280000.00", "deux cent quatre-vingt mille euros"),
    ("12345.67", "douze mille trois cent quarante-cinq euros et soixante-sept centimes"),
    ("30000.00", "trente mille euros"),
    ("39999.99", "trente-neuf mille neuf cent quatre-vingt-dix-neuf euros et quatre-vingt-dix-neuf centimes"),
    ("1000000.00", "un million d'euros"),
    ("2000000.00", "deux millions d'euros"),
    ("1000001.00", "un million un euros"),
    ("1200000.00", "un million deux cent mille euros"),
    ("80000000.00", "quatre-vingts millions d'euros"),
    ("200000000.00", "deux cents millions d'euros"),
    ("1000000.50", "un million d'euros et cinquante centimes"),
]


@pytest.mark.parametrize("amount, words", WORDS)
def test_amount_in_words(amount, words):
    assert amount_in_words(Decimal(amount)) == words


@pytest.mark.parametrize("bad", [Decimal("-1"), Decimal("NaN"), 12.5, 12])
def test_amount_in_words_refuses_what_is_not_a_non_negative_decimal(bad):
    with pytest.raises(ValueError):
        amount_in_words(bad)
