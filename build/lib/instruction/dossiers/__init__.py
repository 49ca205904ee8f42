"""Dossiers: an application for one aid, its expense lines, documents and audit trail."""
