"""The tamper-evident audit trail: the hash chain over ``audit_event`` and its verification."""
