"""Previous / next on the dossier page agree with the queue's own order, for every sort, both ways,
with ties and empty values (not computed yet, nobody assigned), and the queue's pages agree with
each other whatever their size.

The neighbours are found by keyset queries and the page rows by an ordered id walk: two code paths
that must give one order. The order of the page itself is tested in test_backoffice_queue.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import update

from instruction.backoffice import queries
from instruction.dossiers.models import Dossier
from tests import factories


def _filters(sort: str, descending: bool, **extra) -> queries.QueueFilters:
    return queries.QueueFilters(tab="tous", role="instructor", user_id=0, sort=sort,
                                descending=descending, **extra)


@pytest.fixture
def queue(session):
    """Nine dossiers: three share a submission instant and an amount, some have no computed
    amount (received) and nobody assigned."""
    instructors = [factories.user("instructor") for _ in range(2)]
    factories.bulk_dossiers(9, states=("received", "eligible", "granted"), assignees=instructors)
    ids = sorted(session.scalars(Dossier.__table__.select().with_only_columns(Dossier.id)).all())
    same = session.get(Dossier, ids[0])
    session.execute(update(Dossier).where(Dossier.id.in_(ids[1:3]))
                    .values(submitted_at=same.submitted_at, requested_amount=same.requested_amount))
    session.flush()
    return ids


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort", list(queries.SORTS))
def test_previous_and_next_walk_the_queue_in_its_order(session, queue, sort, descending):
    f = _filters(sort, descending)
    ordered = [d.id for d in queries.queue_page(f).dossiers]
    assert sorted(ordered) == queue
    for index, dossier_id in enumerate(ordered):
        found = queries.neighbours(f, dossier_id)
        assert found is not None
        assert (found.previous_id, found.next_id, found.position, found.total) == (
            ordered[index - 1] if index else None,
            ordered[index + 1] if index + 1 < len(ordered) else None,
            index + 1, len(ordered)), f"{sort} {'desc' if descending else 'asc'} at {index}"


@pytest.mark.parametrize("sort", ["depose", "calcule", "instructeur"])
def test_pages_of_the_queue_follow_each_other(session, queue, sort, monkeypatch):
    f = _filters(sort, False)
    whole = [d.id for d in queries.queue_page(f).dossiers]
    monkeypatch.setattr(queries, "PER_PAGE", 4)
    paged = [d.id for page in (1, 2, 3) for d in queries.queue_page(replace(f, page=page)).dossiers]
    assert paged == whole


def test_a_dossier_filtered_out_has_no_place(session, queue):
    f = _filters("depose", False, aid=4)  # every dossier of the fixture is for aid 2
    assert queries.neighbours(f, queue[0]) is None
