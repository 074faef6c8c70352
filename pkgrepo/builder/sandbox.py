"""Run build steps inside bubblewrap: the one place where recipe-controlled bytes are handled.

The sandbox has no network (its own empty network namespace), a cleared
environment, a fixed build path (`/build`), the host toolchain read-only
(`/usr`), the build dependencies read-only at `/sysroot` and a fixed hostname
and umask. Nothing of the host's `/etc`, `/home` or `/tmp` is visible except
the few read-only files the host's own compiler needs.

Privileges: bwrap runs in a new user namespace with every capability dropped,
so nothing inside can mount, remount or write the read-only binds. When
pkgrepo itself runs as root, bwrap is started as a dedicated unprivileged host
user (`BUILD_UID`, default 64055, override with `PKGREPO_BUILD_UID`; its group
is the same number unless `PKGREPO_BUILD_GID` says otherwise): a process that
escaped the mount namespace would still be that user, unable to read root's
0600 files such as the signing keys. Otherwise bwrap runs as the caller.

The bwrap process gets a fixed environment (its own `/proc/1/environ` is
visible inside), resource limits (`LIMITS`) and a deadline: when a step
outlives its time limit its whole process group is killed, and bwrap's pid
namespace dies with it.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pkgrepo.errors import PkgrepoError

BUILD = "/build"
SYSROOT = "/sysroot"
TOOLCHAIN = "/buildhost"
PATH = f"{TOOLCHAIN}/bin:/usr/bin:/usr/sbin:/bin:/sbin"
HOST_ETC = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d")
# The environment of every host process pkgrepo starts on recipe bytes (bwrap itself):
# nothing of the caller's, so no secret reaches /proc/1/environ and no TAR_OPTIONS-like
# variable changes what a tool does.
HOST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "TZ": "UTC"}
BUILD_UID = 64055
GIB = 1 << 30
# (soft, hard) per resource; NPROC only applies to the dedicated build user.
LIMITS = {
    resource.RLIMIT_CORE: (0, 0),
    resource.RLIMIT_NOFILE: (4096, 4096),
    resource.RLIMIT_FSIZE: (16 * GIB, 16 * GIB),
}
NPROC = 8192


@dataclass(frozen=True)
class Identity:
    """The host user a sandbox runs as: `uid`/`gid` None means the caller (already unprivileged)."""

    uid: int | None
    gid: int | None


def build_identity() -> Identity:
    if os.geteuid() != 0:
        return Identity(None, None)
    uid = _id_from_env("PKGREPO_BUILD_UID", BUILD_UID)
    gid = _id_from_env("PKGREPO_BUILD_GID", uid)
    if uid == 0 or gid == 0:
        raise PkgrepoError("PKGREPO_BUILD_UID/PKGREPO_BUILD_GID must not be 0: builds never run as root")
    return Identity(uid, gid)


def _id_from_env(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise PkgrepoError(f"{name}={value!r} is not a numeric id; unset it or give a number such as 64055")
    return int(value)


def give_to_build_user(path: Path) -> None:
    """Make a directory the sandbox writes into owned by the build user (no-op when not root)."""
    ident = build_identity()
    if ident.uid is not None:
        os.chown(path, ident.uid, ident.gid or ident.uid)


def bwrap() -> str:
    """bwrap from the system directories only: never one planted in the caller's PATH."""
    path = shutil.which("bwrap", path=HOST_ENV["PATH"])
    if path is None:
        raise PkgrepoError(
            "bubblewrap (bwrap) is not installed in /usr/bin; run `apt-get install bubblewrap`"
        )
    return path


class StepTimeout(PkgrepoError):
    """A sandboxed command outlived its time limit and was killed."""


def _limits(dedicated: bool, nice: int) -> None:  # runs in the child between fork and exec
    for res, value in LIMITS.items():
        resource.setrlimit(res, value)
    if dedicated:
        resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))
    if nice:
        os.nice(nice)


def run_confined(argv: list[str], log: Path, timeout: int, stdin: int | None = None, nice: int = 0) -> int:
    """Run a bwrap command line as the build user with limits and a deadline; return its exit code.

    `nice` (0 or more) is added to the niceness the command inherits. Raises StepTimeout when
    `timeout` seconds pass; the process group is killed first.
    """
    ident = build_identity()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(HOST_ENV),
            cwd="/",
            close_fds=True,
            start_new_session=True,
            user=ident.uid,
            group=ident.gid,
            extra_groups=[] if ident.uid is not None else None,
            preexec_fn=lambda: _limits(ident.uid is not None, nice),
        )
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            out.write(f"pkgrepo: killed after {timeout} s\n".encode())
            raise StepTimeout(f"killed after the time limit of {timeout} s") from None


def bwrap_argv(
    mounts: list[str], command: list[str], *, hostname: str, cwd: str, env: dict[str, str]
) -> list[str]:
    """The one bubblewrap command line: every namespace new (no network), no capabilities, uid 0
    inside, a fresh /proc, /dev and /tmp over `mounts`, only `env` in the environment.

    Build steps and test roots differ only in `mounts`, hostname, directory and environment.
    """
    args = [
        bwrap(),
        "--unshare-all",
        "--unshare-user",
        "--uid",
        "0",
        "--gid",
        "0",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        hostname,
        *mounts,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--chdir",
        cwd,
        "--clearenv",
    ]
    for key in sorted(env):
        args += ["--setenv", key, env[key]]
    return [*args, *command]


@dataclass
class Sandbox:
    build_dir: Path
    sysroot: Path | None = None
    toolchain: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    hostname: str = "pkgrepo"
    umask: int = 0o022
    nice: int = 0

    def argv(self, command: list[str], cwd: str = BUILD) -> list[str]:
        mounts = [
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--dir",
            "/lib",
            "--symlink",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/x86_64-linux-gnu",
            "--bind",
            str(self.build_dir),
            BUILD,
        ]
        for path in HOST_ETC:
            if os.path.exists(path):
                mounts += ["--ro-bind", path, path]
        if self.toolchain is not None:
            mounts += ["--ro-bind", str(self.toolchain), TOOLCHAIN]
            for name in sorted(os.listdir(self.toolchain / "etc")):
                mounts += ["--ro-bind", str(self.toolchain / "etc" / name), f"/etc/{name}"]
        if self.sysroot is not None:
            mounts += ["--ro-bind", str(self.sysroot), SYSROOT]
            for loader in sorted((self.sysroot / "lib").glob("ld-*.so*")):
                # Programs linked against the sysroot's libc (configure tests) must run.
                mounts += ["--ro-bind", str(loader), f"/lib/{loader.name}"]
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
        umask = ["/bin/sh", "-c", f'umask {self.umask:03o}; exec "$@"', "sh", *command]
        return bwrap_argv(mounts, umask, hostname=self.hostname, cwd=cwd, env=env)

    def run(
        self, command: list[str], log: Path, timeout: int, cwd: str = BUILD, stdin: int | None = None
    ) -> int:
        """Run `command` in the sandbox, its output appended to `log`; `stdin` is an open file descriptor."""
        with open(log, "ab") as out:
            out.write(f"$ {' '.join(command)}\n".encode())
        return run_confined(self.argv(command, cwd), log, timeout, stdin, self.nice)


def run_in_root(rootfs: Path, script: str, log: Path, timeout: int, hostname: str = "pkgrepo-test") -> int:
    """Run `script` with /bin/sh of an installed rootfs, that rootfs as `/`, no network."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TZ": "UTC", "LC_ALL": "C"}
    argv = bwrap_argv(
        ["--bind", str(rootfs), "/"], ["/bin/sh", "-ec", script], hostname=hostname, cwd="/", env=env
    )
    with open(log, "ab") as out:
        out.write(f"$ (test) {script}\n".encode())
    return run_confined(argv, log, timeout)
