"""Accounts: users, roles, authentication."""
