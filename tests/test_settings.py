"""The service's identity: defaults from the configuration, one row once saved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from instruction.settings.models import ServiceIdentity
from instruction.settings.services import (
    IDENTITY_FIELDS,
    InvalidIdentity,
    current_identity,
    update_identity,
)

NOW = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)


def test_without_a_row_the_identity_is_the_configured_default(session):
    identity = current_identity()
    assert identity.authority_name == "Région Bourgogne-Franche-Comté"
    assert identity.tribunal_name == "Tribunal administratif de Besançon"
    assert identity.telerecours_url == "https://citoyens.telerecours.fr"
    assert session.scalar(sa.select(sa.func.count()).select_from(ServiceIdentity)) == 0


def test_defaults_follow_the_configuration(app, session):
    saved = dict(app.config["SERVICE_IDENTITY"])
    app.config["SERVICE_IDENTITY"] = {**saved, "telephone": "03 00 00 00 00"}
    try:
        assert current_identity().telephone == "03 00 00 00 00"
    finally:
        app.config["SERVICE_IDENTITY"] = saved


def test_first_update_creates_the_one_row_and_keeps_the_other_defaults(session):
    before, after = update_identity({"telephone": " 03 80 44 33 00 ", "signatory_name": "Jeanne Martin"},
                                    now=NOW)
    assert before.telephone == "03 81 61 61 61"
    assert after.telephone == "03 80 44 33 00"
    session.expire_all()
    row = session.get(ServiceIdentity, 1)
    assert row.telephone == "03 80 44 33 00" and row.signatory_name == "Jeanne Martin"
    assert row.service_name == before.service_name
    assert row.updated_at == NOW
    assert current_identity() == after
    update_identity({"email": "autre@example.org"}, now=NOW)
    assert session.scalar(sa.select(sa.func.count()).select_from(ServiceIdentity)) == 1
    assert current_identity().signatory_name == "Jeanne Martin"


@pytest.mark.parametrize("changes, message", [
    ({"telephone": "  "}, "Champ obligatoire : Téléphone."),
    ({"colour": "bleu"}, "Champ inconnu : colour."),
    ({"telephone": "0" * 41}, "Téléphone : 40 caractères au plus."),
])
def test_bad_changes_are_refused_in_french_and_nothing_is_written(session, changes, message):
    with pytest.raises(InvalidIdentity) as error:
        update_identity(changes, now=NOW)
    assert error.value.message == message and error.value.status == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(ServiceIdentity)) == 0


def test_a_second_row_is_refused_by_the_database(session):
    update_identity({}, now=NOW)
    values = {name: "x" for name in IDENTITY_FIELDS}
    with pytest.raises(sa.exc.IntegrityError):
        with session.begin_nested():
            session.add(ServiceIdentity(id=2, updated_at=NOW, **values))
            session.flush()
