"""docs/api.md's table of HTTP statuses is the gateway's own mapping, code for code."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.gateway.errors import STATUS
from exchange.reasons import Reason

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"


def documented() -> dict[int, set[str]]:
    """The status table of docs/api.md: HTTP status -> the codes its row names."""
    text = API_DOC.read_text()
    table = text.split("<!-- status table: begin -->")[1].split("<!-- status table: end -->")[0]
    rows = {}
    for line in table.splitlines():
        match = re.fullmatch(r"\| (\d{3}) \| (.*) \|", line)
        if match:
            rows[int(match.group(1))] = set(re.findall(r"`([A-Z_]+)`", match.group(2)))
    return rows


def test_every_mapped_status_is_documented_with_exactly_its_codes() -> None:
    rows = documented()
    expected: dict[int, set[str]] = {}
    for reason, status in STATUS.items():
        expected.setdefault(status, set()).add(reason.name)
    for status, codes in expected.items():
        assert rows.get(status) == codes, f"docs/api.md row {status}: {sorted(codes)}"
    assert set(rows) == set(expected) | {400, 405}


def test_the_400_row_names_only_codes_the_mapping_leaves_at_400() -> None:
    codes = documented()[400]
    assert codes and all(Reason[name] not in STATUS for name in codes)
    assert documented()[405] == {"INVALID_REQUEST"}
