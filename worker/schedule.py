"""The beat schedule, in one place. Times are Europe/Paris (the Celery app's timezone).

Every job is idempotent and takes the instant as an argument, so a missed or doubled tick is
harmless; ``instruction worker run-jobs`` runs the same jobs once, synchronously.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Outbox rows whose task was never queued (broker down at commit) or was lost.
    "dispatch-pending": {"task": "worker.dispatch_pending", "schedule": 60.0},
    # Drafts of campaigns whose deadline has passed become expired.
    "expire-drafts": {"task": "worker.expire_drafts", "schedule": crontab(minute="*/15")},
    # Deadline (J-30, J-7, J-1) and documents reminders, hourly during office hours.
    "reminders": {"task": "worker.send_reminders", "schedule": crontab(minute=30, hour="8-18")},
    # Instructors' digest, 8:00 Monday to Friday; the job itself skips public holidays.
    "digest": {"task": "worker.send_digests",
               "schedule": crontab(minute=0, hour=8, day_of_week="mon-fri")},
    # PDF of the legal acts issued meanwhile (else rendered at their first download).
    "render-acts": {"task": "worker.render_acts", "schedule": crontab(minute="*/5")},

    # Files of dossiers closed longer than the retention period (DOCUMENT_RETENTION_DAYS).
    "purge-documents": {"task": "worker.purge_documents", "schedule": crontab(minute=0, hour=3)},
    # Export files past EXPORT_RETENTION_HOURS deleted; exports never started or abandoned queued again.
    "tend-exports": {"task": "worker.tend_exports", "schedule": crontab(minute="*/10")},
    # Balance time limit: reminders before it, caducité of the grants after it (nightly).
    "balance-deadlines": {"task": "worker.balance_deadlines", "schedule": crontab(minute=15, hour=2)},
    # The audit chain, verified every night; the admin home shows the result.
    "audit-chain": {"task": "worker.verify_audit_chain", "schedule": crontab(minute=30, hour=3)},
}
