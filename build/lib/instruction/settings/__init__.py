"""The service's identity: who signs the legal acts and how to reach and contest it.

One row (``service_identity``), created from the configuration's defaults the first time it is
saved; :func:`current_identity` reads it (or the defaults while there is no row).
"""
