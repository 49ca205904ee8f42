"""Instruction as a team: the message thread, private notes, labels, assignment, followers and
what changed since a staff member last looked at a dossier."""
