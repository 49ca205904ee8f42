"""Instructor and finance back-office: queue, dossier page, envelopes, payments."""
