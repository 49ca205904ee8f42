"""Health probes of the containers (docker-compose.yml ``healthcheck``), without curl in the image.

``python -m instruction.probe web [URL]``: the health endpoint answers 200 (database and broker up).
``python -m instruction.probe beat [SCHEDULE] [MAX_AGE]``: beat's schedule file was written lately
(beat saves it every few minutes while it sends the minutely ``dispatch-pending``).
Exit status 0 when healthy, 1 otherwise, with the reason on standard error.
"""

from __future__ import annotations

import glob
import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/sante"
DEFAULT_SCHEDULE = "/tmp/celerybeat-schedule"
DEFAULT_MAX_AGE = 600.0  # seconds


def probe_web(url: str = DEFAULT_URL, timeout: float = 4.0) -> str | None:
    """None when healthy, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return None if response.status == 200 else f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"{url}: HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return f"{url}: {error}"


def probe_beat(schedule: str = DEFAULT_SCHEDULE, max_age: float = DEFAULT_MAX_AGE,
               now: float | None = None) -> str | None:
    # The shelve module may add a suffix (.db, .dat…) depending on the dbm available.
    files = glob.glob(glob.escape(schedule) + "*")
    if not files:
        return f"{schedule}: no schedule file yet"
    if now is None:
        from instruction import clock

        now = clock.now().timestamp()
    age = now - max(os.path.getmtime(path) for path in files)
    return None if age <= max_age else f"{schedule}: not written for {age:.0f} s"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("web", "beat"):
        print("usage: python -m instruction.probe web [URL] | beat [SCHEDULE] [MAX_AGE]", file=sys.stderr)
        return 2
    if argv[0] == "web":
        problem = probe_web(argv[1] if len(argv) > 1 else DEFAULT_URL)
    else:
        problem = probe_beat(argv[1] if len(argv) > 1 else DEFAULT_SCHEDULE,
                             float(argv[2]) if len(argv) > 2 else DEFAULT_MAX_AGE)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
