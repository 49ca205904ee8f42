"""Large exports of a queue view, built by the worker: the job (``models``), its building, download
and purge (``services``), its pages (``views``). Small exports stay immediate (backoffice)."""
