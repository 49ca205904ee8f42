"""``instruction accounts create-admin``: the first administrator of a deployment (docs/deploy.md)."""

from __future__ import annotations

from sqlalchemy import select

from instruction.accounts.models import User


def admin(session, email):
    return session.scalar(select(User).where(User.email == email))


def test_the_first_admin_is_created_with_a_prompted_password(app, session):
    result = app.test_cli_runner().invoke(
        args=["accounts", "create-admin", "Chef.Service@Region.fr", "--name", "Camille Martin"],
        input="une phrase de passe solide\nune phrase de passe solide\n")
    assert result.exit_code == 0, result.output
    assert "Administrateur créé : chef.service@region.fr" in result.output
    user = admin(session, "chef.service@region.fr")
    assert (user.role, user.full_name) == ("admin", "Camille Martin")
    assert user.email_confirmed_at is not None and user.approved_at is not None
    assert user.totp_enabled_at is None  # enrolled at first login
    assert user.check_password("une phrase de passe solide")


def test_a_weak_password_or_a_taken_address_is_refused_in_french(app, session):
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["accounts", "create-admin", "a@region.fr", "--name", "A", "--password", "azerty"])
    assert weak.exit_code == 1
    assert "au moins 12 caractères" in weak.output
    assert admin(session, "a@region.fr") is None
    ok = runner.invoke(args=["accounts", "create-admin", "b@region.fr", "--name", "B",
                             "--password", "une phrase de passe solide"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(args=["accounts", "create-admin", "B@region.fr", "--name", "B2",
                                "--password", "une autre phrase de passe"])
    assert again.exit_code == 1 and "Un compte existe déjà" in again.output
