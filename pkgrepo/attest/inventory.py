"""What an installed root contains, as SBOM records: every package its database lists.

The set comes from the root's installed-package database (`var/lib/pkgrepo/installed.json`);
each package's license, homepage and sources from the SBOM it installed
(`var/lib/pkgrepo/sbom/NAME.spdx.json`); its checksum is the content digest recomputed from
the installed files. A package without its own SBOM (built before SBOMs existed) is still
listed, with what the database knows and NOASSERTION for the rest: none is left out.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from pkgrepo.attest.component import Component, Subject, installed_digest
from pkgrepo.attest.sbom import read_sbom
from pkgrepo.errors import BadInput
from pkgrepo.package.extract import own_sboms as sbom_paths
from pkgrepo.package.rootfs import installed_in


def rootfs_subject(rootfs: Path, name: str | None = None, version: str = "") -> Subject:
    if not rootfs.is_dir():
        raise BadInput(f"{rootfs}: not a directory; pass a root filesystem or an SBOM file")
    db = installed_in(rootfs)
    if not db:
        raise BadInput(f"{rootfs}: no installed packages recorded (var/lib/pkgrepo/installed.json)")
    components, created = [], 0
    for pkg, rec in sorted(db.items()):
        own = rootfs / sbom_paths(pkg)[0]
        digest = installed_digest(rootfs, rec.files)
        base = Component(pkg, rec.version, "", rec.origin or pkg, digest)
        if own.is_file() and not own.is_symlink():
            sub = read_sbom(own)
            found = [c for c in sub.components if c.name == pkg]
            if not found or found[0].version != rec.version:
                raise BadInput(f"{own}: does not describe {pkg} {rec.version}; the root is inconsistent")
            c = found[0]
            base = replace(c, content_sha256=digest)
            created = max(created, sub.created)
        components.append(base)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    created = int(epoch) if epoch and epoch.isdigit() else created
    return Subject("image", name or rootfs.resolve().name, version, created, tuple(components))
