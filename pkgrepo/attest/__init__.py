"""Supply-chain evidence: SBOMs (SPDX, CycloneDX), signed SLSA provenance (in-toto/DSSE), VEX, scan.

One concept per module: `component` (the typed record every SBOM is made of),
`sbom` (SPDX 2.3 and CycloneDX 1.6 documents), `dsse` (the provenance key and
DSSE envelopes), `provenance` (SLSA v1 statements), `evidence` (what the
builder and the publisher attach to a package), `verify`, `advisories` (OSV),
`vex` (OpenVEX), `scan` and `rollout` (patch to image).
"""
