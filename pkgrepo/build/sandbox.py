"""Run build steps inside bubblewrap.

The sandbox has no network (its own empty network namespace), a cleared
environment, a fixed build path (`/build`), the host toolchain read-only
(`/usr`), the build dependencies read-only at `/sysroot` and a fixed hostname
and umask. Nothing of the host's `/etc`, `/home` or `/tmp` is visible except
the few read-only files the host's own compiler needs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.errors import PkgrepoError

BUILD = "/build"
SYSROOT = "/sysroot"
TOOLCHAIN = "/buildhost"
PATH = f"{TOOLCHAIN}/bin:/usr/bin:/usr/sbin:/bin:/sbin"
HOST_ETC = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")


def bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise PkgrepoError("bubblewrap (bwrap) is not installed; run `apt-get install bubblewrap`")
    return path


@dataclass
class Sandbox:
    build_dir: Path
    sysroot: Path | None = None
    toolchain: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = "pkgrepo"
    umask: int = 0o022

    def argv(self, command: list[str], cwd: str = BUILD) -> list[str]:
        args = [
            bwrap(), "--unshare-all", "--die-with-parent", "--new-session",
            "--hostname", self.hostname,
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib64", "/lib64",
            "--dir", "/lib",
            "--symlink", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--bind", str(self.build_dir), BUILD,
        ]  # fmt: skip
        for path in HOST_ETC:
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        if self.toolchain is not None:
            args += ["--ro-bind", str(self.toolchain), TOOLCHAIN]
            for name in sorted(os.listdir(self.toolchain / "etc")):
                args += ["--ro-bind", str(self.toolchain / "etc" / name), f"/etc/{name}"]
        if self.sysroot is not None:
            args += ["--ro-bind", str(self.sysroot), SYSROOT]
            for loader in sorted((self.sysroot / "lib").glob("ld-*.so*")):
                # Programs linked against the sysroot's libc (configure tests) must run.
                args += ["--ro-bind", str(loader), f"/lib/{loader.name}"]
        env = {
            "PATH": PATH,
            "HOME": f"{BUILD}/home",
            "TZ": "UTC",
            "LC_ALL": "C",
            "LANG": "C",
            "SHELL": "/bin/sh",
            "TERM": "dumb",
            **self.env,
        }
        args += ["--chdir", cwd, "--clearenv"]
        for key in sorted(env):
            args += ["--setenv", key, env[key]]
        return [*args, "/bin/sh", "-c", f'umask {self.umask:03o}; exec "$@"', "sh", *command]

    def run(self, command: list[str], log: Path, cwd: str = BUILD) -> int:
        with open(log, "ab") as out:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            proc = subprocess.run(
                self.argv(command, cwd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        return proc.returncode


def run_in_root(rootfs: Path, script: str, log: Path, hostname: str = "pkgrepo-test") -> int:
    """Run `script` with /bin/sh of an installed rootfs, that rootfs as `/`, no network."""
    argv = [
        bwrap(), "--unshare-all", "--die-with-parent", "--new-session",
        "--hostname", hostname,
        "--bind", str(rootfs), "/",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--chdir", "/", "--clearenv",
        "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin",
        "--setenv", "HOME", "/root", "--setenv", "TZ", "UTC", "--setenv", "LC_ALL", "C",
        "/bin/sh", "-ec", script,
    ]  # fmt: skip
    with open(log, "ab") as out:
        out.write(f"$ (test) {script}\n".encode())
        out.flush()
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return proc.returncode
