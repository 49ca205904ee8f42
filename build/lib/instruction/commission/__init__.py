"""Grants voted in session by the commission permanente (when the campaign requires a vote)."""
