"""Applicant portal: dossiers, expense lines, invoices, submission."""
