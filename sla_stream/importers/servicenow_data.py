"""The public ServiceNow incident event log shipped in the repository, and its 890-incident sample.

The log is `examples/servicenow/data/incident_event_log.csv.gz` (CC BY 4.0, credited in the
README beside it). The sample the tests and the README use is its first 5,998 data rows, derived
from the log rather than shipped twice.
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICENOW_LOG = REPO_ROOT / "examples" / "servicenow" / "data" / "incident_event_log.csv.gz"
SAMPLE_ROWS = 5_998  # the first 890 incidents, each complete


def sample_rows(rows: int = SAMPLE_ROWS, log: Path = SERVICENOW_LOG) -> list[str]:
    """The header line and the first `rows` data lines of the log, line ends kept (CRLF).

    One line is one row: the log has no quoted line breaks."""
    with gzip.open(log, "rt", encoding="utf-8", newline="") as source:
        return list(itertools.islice(source, rows + 1))


def write_sample(path: Path, rows: int = SAMPLE_ROWS) -> Path:
    """Write the sample as a plain CSV file at `path` (for commands that take a file)."""
    path.write_text("".join(sample_rows(rows)), encoding="utf-8", newline="")
    return path
