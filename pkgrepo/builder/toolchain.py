"""The compiler set-up seen inside the sandbox.

The host's gcc and binutils are used read-only. When the sysroot holds musl
(installed from the project's own musl-dev package), `cc`/`gcc` are wrappers
that compile against it through a gcc specs file, exactly what `musl-gcc`
does: no host libc headers or libraries, musl's start files, musl's dynamic
loader as the program interpreter. Linux kernel headers are a build-only host
input: they are visible to the compiler but never packaged.
"""

from __future__ import annotations

import os
from pathlib import Path

from pkgrepo.builder.sandbox import SYSROOT, TOOLCHAIN

LOADER = "/lib/ld-musl-x86_64.so.1"
KERNEL_HEADERS = {
    "linux": "/usr/include/linux",
    "asm": "/usr/include/x86_64-linux-gnu/asm",
    "asm-generic": "/usr/include/asm-generic",
    "mtd": "/usr/include/mtd",
}

SPECS = f"""%rename cpp_options old_cpp_options

*cpp_options:
-nostdinc -isystem {SYSROOT}/usr/include -isystem {TOOLCHAIN}/kernel-include -isystem include%s \
%(old_cpp_options)

*cc1:
%(cc1_cpu) -nostdinc -isystem {SYSROOT}/usr/include -isystem {TOOLCHAIN}/kernel-include -isystem include%s

*link_libgcc:
-L{SYSROOT}/usr/lib -L{SYSROOT}/lib -L .%s

*libgcc:
libgcc.a%s %:if-exists(libgcc_eh.a%s)

*startfile:
%{{!shared: {SYSROOT}/usr/lib/Scrt1.o}} {SYSROOT}/usr/lib/crti.o crtbeginS.o%s

*endfile:
crtendS.o%s {SYSROOT}/usr/lib/crtn.o

*link:
-dynamic-linker {LOADER} -rpath-link {SYSROOT}/usr/lib:{SYSROOT}/lib -nostdlib \
%{{shared:-shared}} %{{static:-static}} %{{rdynamic:-export-dynamic}}

*esp_link:


*esp_options:


*esp_cpp_options:


"""

WRAPPER = f"""#!/bin/sh
exec /usr/bin/gcc -specs={TOOLCHAIN}/musl-gcc.specs "$@"
"""


def has_musl(sysroot: Path) -> bool:
    return os.path.lexists(sysroot / "usr/lib/libc.so") and (sysroot / LOADER.lstrip("/")).is_file()


def prepare(tc: Path, sysroot: Path) -> dict[str, str]:
    """Write the toolchain directory; return the environment it needs."""
    (tc / "etc").mkdir(parents=True)
    (tc / "bin").mkdir()
    (tc / "etc/passwd").write_text(
        "root:x:0:0:root:/build/home:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    (tc / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    env = {
        "PKG_CONFIG_LIBDIR": f"{SYSROOT}/usr/lib/pkgconfig:{SYSROOT}/usr/share/pkgconfig",
        "PKG_CONFIG_SYSROOT_DIR": SYSROOT,
    }
    if not has_musl(sysroot):
        return env
    (tc / "musl-gcc.specs").write_text(SPECS)
    for name in ("cc", "gcc", "musl-gcc"):
        wrapper = tc / "bin" / name
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
    (tc / "kernel-include").mkdir()
    for name, target in KERNEL_HEADERS.items():
        (tc / "kernel-include" / name).symlink_to(target)
    (tc / "etc/ld-musl-x86_64.path").write_text(f"{SYSROOT}/lib\n{SYSROOT}/usr/lib\n")
    env.update({"CC": "cc", "HOSTCC": "/usr/bin/gcc", "BUILD_CC": "/usr/bin/gcc"})
    return env
