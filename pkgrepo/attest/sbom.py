"""SBOM documents: SPDX 2.3 JSON (`spdx`) and CycloneDX 1.6 JSON (`cdx`), one module per format.

Both are built from `Subject`/`Component` records, validated by their own library's
validator before a byte is written, and serialised deterministically: timestamps are the
subject's `created` (SOURCE_DATE_EPOCH), lists are sorted, and the SPDX namespace and the
CycloneDX serial number derive from a digest of the content. `read_sbom` accepts either
format (validated the same way) and gives the records back.
"""

from __future__ import annotations

from pathlib import Path

from pkgrepo.attest.cdx import read_cyclonedx
from pkgrepo.attest.component import Subject
from pkgrepo.attest.spdx import read_spdx
from pkgrepo.errors import BadInput
from pkgrepo.safeio import parse_json, read_regular


def read_sbom(path: Path) -> Subject:
    """An SPDX 2.3 or CycloneDX 1.6 JSON document, validated, as records."""
    try:
        raw = read_regular(path, "SBOM")  # no-follow, a regular file of bounded size
    except FileNotFoundError:
        raise BadInput(f"{path}: cannot read SBOM (no such file)") from None
    data = parse_json(raw, path, "SBOM")
    text = raw.decode()
    try:
        if isinstance(data, dict) and "spdxVersion" in data:
            return read_spdx(path, data)
        if isinstance(data, dict) and data.get("bomFormat") == "CycloneDX":
            return read_cyclonedx(path, text, data)
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as e:
        raise BadInput(
            f"{path}: the SBOM validates but a pkgrepo package entry is malformed "
            f"({type(e).__name__}: {e}); regenerate it with `pkgrepo sbom`"
        ) from None
    raise BadInput(f"{path}: neither SPDX (spdxVersion) nor CycloneDX (bomFormat) JSON; pass an SBOM")
