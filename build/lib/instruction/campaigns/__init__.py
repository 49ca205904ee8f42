"""Campaigns: a call for applications with its dates and the aids it offers."""
