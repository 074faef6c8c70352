"""The reasons of repo-data/vex/openssl-3.0.22.json, checked in the BUILT openssl packages.

Each `fixed` statement must be named by OpenSSL's own CHANGES.md in the source the packages'
signed provenance names (or, for CVE-2026-42767, the fixed code must be in that source); each
`not_affected` statement has a check here that the vulnerable code is absent from what was built:
an exported symbol the feature would add, a string, the ELF machine, or a file of the source.
A statement without a check, or a check without a statement, fails the test.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from elftools.elf.elffile import ELFFile

from pkgrepo.paths import default_cache
from tests.helpers.cli import ROOT, build_cached, run_cli

VEX = ROOT / "repo-data" / "vex" / "openssl-3.0.22.json"


class Built:
    """The openssl packages of one build: their payloads, and the source tarball their provenance names."""

    def __init__(self, out: Path):
        self.payloads: dict[str, dict[str, bytes]] = {}
        self.packages = sorted(out.glob("*-3.0.22-r*.pkg.tar.zst"))  # its build dependencies are there too
        assert len(self.packages) >= 4, self.packages
        for pkg in self.packages:
            name = pkg.name.split("-3.0.")[0]
            with pkg.open("rb") as f:
                data = zstandard.ZstdDecompressor().stream_reader(f).read()
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                self.payloads[name] = {
                    m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()
                }
        envelope = json.loads((out / f"{_archive(out, 'libcrypto3')}.intoto.json").read_text())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        (source,) = [
            d
            for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
            if d["name"] == "source"
        ]
        assert source["uri"].endswith("openssl-3.0.22.tar.gz"), source
        tarball = default_cache() / "sha256" / source["digest"]["sha256"]
        assert tarball.is_file(), f"the source the provenance names is not in the source cache: {tarball}"
        with tarfile.open(tarball) as tar:
            self.source = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
            self._tar = tarball
        self._text: dict[str, str] = {}

    def file(self, package: str, suffix: str) -> bytes:
        (hit,) = [data for path, data in self.payloads[package].items() if path.endswith(suffix)]
        return hit

    def exports(self, package: str, suffix: str) -> set[str]:
        elf = ELFFile(io.BytesIO(self.file(package, suffix)))
        return {
            s.name for s in elf.get_section_by_name(".dynsym").iter_symbols() if s["st_shndx"] != "SHN_UNDEF"
        }

    def text(self, path: str) -> str:
        if path not in self._text:
            with tarfile.open(self._tar) as tar:
                f = tar.extractfile(self.source[path])
                assert f is not None, path
                self._text[path] = f.read().decode()
        return self._text[path]


def _archive(out: Path, name: str) -> str:
    (pkg,) = out.glob(f"{name}-3.0.*.pkg.tar.zst")
    return pkg.name


@pytest.fixture(scope="module")
def built_openssl(tmp_path_factory) -> Built:
    out = tmp_path_factory.mktemp("openssl")
    proc = build_cached(out, "openssl")
    assert proc.returncode == 0, proc.stderr
    return Built(out)


LIBSSL = ("libssl3", "/libssl.so.3")
LIBCRYPTO = ("libcrypto3", "/libcrypto.so.3")


def no_export(where: tuple[str, str], *symbols: str) -> Callable[[Built], None]:
    def check(b: Built) -> None:
        exports = b.exports(*where)
        # the test can see exports: a 3.0 function of the same library is there
        assert {"SSL_CTX_new", "EVP_PKEY_new"} & exports, where
        assert not set(symbols) & exports, (where, set(symbols) & exports)

    return check


def no_source(path: str, positive: str) -> Callable[[Built], None]:
    def check(b: Built) -> None:
        assert positive in b.source, positive
        assert not [p for p in b.source if p.startswith(path)], path

    return check


def source_lacks(path: str, pattern: str, positive: str) -> Callable[[Built], None]:
    def check(b: Built) -> None:
        text = b.text(path)
        assert positive in text, (path, positive)
        assert not re.search(pattern, text, re.IGNORECASE), (path, pattern)

    return check


def both(*checks: Callable[[Built], None]) -> Callable[[Built], None]:
    def check(b: Built) -> None:
        for c in checks:
            c(b)

    return check


def x86_64_only(b: Built) -> None:
    assert ELFFile(io.BytesIO(b.file(*LIBCRYPTO)))["e_machine"] == "EM_X86_64"
    assert not [p for p in b.source if re.match(r"crypto/ec/asm/.*sm2", p)]


def no_unexpected_sender_reason(b: Built) -> None:
    lib = b.file(*LIBCRYPTO)
    assert b"sender DN field" in lib  # 3.0's own check_name message is there
    assert b"unexpected sender" not in lib


def crmf_parameter_checked(b: Built) -> None:
    text = b.text("crypto/crmf/crmf_lib.c")
    body = text[text.index("X509 *OSSL_CRMF_ENCRYPTEDVALUE_get1_encCert(") :]
    assert re.search(r"ecert->symmAlg->parameter == NULL\s*\|\|\s*ASN1_TYPE_get_octetstring", body)


QUIC = no_export(LIBSSL, "OSSL_QUIC_client_method", "OSSL_QUIC_server_method", "SSL_new_listener")
RPK = no_export(LIBSSL, "SSL_get0_peer_rpk", "SSL_set1_server_cert_type")
PBMAC1 = both(
    no_export(LIBCRYPTO, "PKCS12_set_pbmac1_pbkdf2"),
    source_lacks("crypto/pkcs12/p12_mutl.c", "pbmac1", "PKCS12_verify_mac"),
)
OCSP_VERIFY = both(
    no_export(LIBCRYPTO, "X509_STORE_CTX_set_ocsp_resp"),
    source_lacks("crypto/x509/x509_vfy.c", "ocsp", "X509_verify_cert"),
)

NOT_AFFECTED: dict[str, Callable[[Built], None]] = {
    "CVE-2026-14456": QUIC,
    "CVE-2026-18798": QUIC,
    "CVE-2026-34183": QUIC,
    "CVE-2026-42764": QUIC,
    "CVE-2026-63075": QUIC,
    "CVE-2025-15468": both(QUIC, no_source("ssl/quic/", "ssl/ssl_ciph.c")),
    "CVE-2024-12797": RPK,
    "CVE-2026-14457": RPK,
    "CVE-2025-11187": PBMAC1,
    "CVE-2026-34181": PBMAC1,
    "CVE-2025-66199": no_export(LIBSSL, "SSL_CTX_set1_cert_comp_preference"),
    "CVE-2025-9231": x86_64_only,
    "CVE-2026-28386": no_source("crypto/aes/asm/aes-cfb-avx512", "crypto/modes/cfb128.c"),
    "CVE-2025-15469": source_lacks("apps/dgst.c", "oneshot|one-shot", "do_fp"),
    "CVE-2025-4575": source_lacks(
        "apps/x509.c",
        r"X509_add1_trust_object\(x, sk_ASN1_OBJECT_value\(reject",
        "X509_add1_reject_object(x, sk_ASN1_OBJECT_value(reject, i))",
    ),
    "CVE-2026-2673": source_lacks("ssl/t1_lib.c", "tuple", "tls1_set_groups_list"),
    "CVE-2026-35188": OCSP_VERIFY,
    "CVE-2026-42765": OCSP_VERIFY,
    "CVE-2026-42769": no_export(
        LIBCRYPTO, "OSSL_CMP_get1_rootCaKeyUpdate", "OSSL_CMP_ITAV_new_rootCaKeyUpdate"
    ),
    "CVE-2026-63073": no_unexpected_sender_reason,
}
FIXED_IN_CODE: dict[str, Callable[[Built], None]] = {"CVE-2026-42767": crmf_parameter_checked}


def statements() -> list[dict]:
    return json.loads(VEX.read_text())["statements"]


def test_every_statement_has_its_check():
    by_status: dict[str, set[str]] = {}
    for s in statements():
        by_status.setdefault(s["status"], set()).add(s["vulnerability"]["name"])
        if s["status"] == "not_affected":
            assert s["justification"] == "vulnerable_code_not_present", s
    assert by_status.pop("not_affected") == set(NOT_AFFECTED)
    assert set(FIXED_IN_CODE) <= by_status["fixed"]
    assert set(by_status) == {"fixed"}


@pytest.mark.parametrize("cve", sorted(NOT_AFFECTED))
def test_not_affected_code_is_absent_from_the_build(built_openssl: Built, cve: str):
    NOT_AFFECTED[cve](built_openssl)


def test_fixed_ids_are_openssl_own_fixes_up_to_our_release(built_openssl: Built):
    """A `fixed` statement names an id that CHANGES.md of the built source lists under a 3.0.x
    release (or whose fixed code the source holds), and every product is a package we built."""
    changes = built_openssl.text("CHANGES.md")
    head = changes[: changes.index("OpenSSL 1.1.1\n---")]
    assert "### Changes between 3.0.21 and 3.0.22" in head
    named = set(re.findall(r"\(\[(CVE-\d{4}-\d+)\]\)", head))
    for s in statements():
        assert {p["@id"].split("@")[0].rsplit("/", 1)[1] for p in s["products"]} <= set(
            built_openssl.payloads
        )
        cve = s["vulnerability"]["name"]
        if s["status"] != "fixed":
            continue
        if cve in FIXED_IN_CODE:
            assert cve not in named
            FIXED_IN_CODE[cve](built_openssl)
        else:
            assert cve in named, cve


def test_scan_of_the_packages_leaves_nothing_open(built_openssl: Built):
    """With the VEX and the CVE-2026-42768 patch (proven by each package's signed provenance), a
    scan of each built openssl package leaves nothing open (docs/evidence.md, "The bar")."""
    for pkg in built_openssl.packages:
        doc = json.loads(run_cli("scan", str(pkg), "--json").stdout)
        open_ = {f["advisory"] for f in doc["findings"] if f["status"] not in ("fixed", "not_affected")}
        assert open_ == set(), (pkg.name, open_)
        (f,) = [f for f in doc["findings"] if f["advisory"] == "DEBIAN-CVE-2026-42768"]
        assert f["status"] == "fixed" and "patch in signed provenance" in f["note"], f


def test_implicit_rejection_is_built_in(built_openssl: Built):
    """The CVE-2026-42768 backport is in what was built: libcrypto (with the default provider) knows
    the implicit-rejection parameter and its control string, as 3.2 and later do (3.0.22 does not)."""
    lib = built_openssl.file(*LIBCRYPTO)
    assert b"implicit-rejection" in lib and b"rsa_pkcs1_implicit_rejection" in lib
    assert "implicit-rejection" not in built_openssl.text("include/openssl/core_names.h")  # not upstream 3.0
