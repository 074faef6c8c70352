"""Image roots run as containers in a pod: one network namespace of their own, loopback up, shared.

A server image listens on its own fixed port (nginx on 8080, its sidecar on 9000), as it would in
a Kubernetes pod, so the tests run it in a network namespace made for the test: the host's ports
are never used, and two tests (or two pytest-xdist workers) never meet. Every process of the pod
is started here and stopped by its id when the pod ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pkgrepo.builder.sandbox import bwrap_argv

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class Pod:
    """`unshare --net` holding a namespace with loopback up; `nsenter` puts each process into it.

    As root the namespace is the host user's; otherwise it belongs to a new user namespace (root
    mapped to the caller), which every process joins too."""

    def __init__(self) -> None:
        self.root = os.geteuid() == 0
        user = [] if self.root else ["--user", "--map-root-user"]
        self._holder = subprocess.Popen(
            ["unshare", *user, "--net", "--", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._holder.stdout.readline() if self._holder.stdout else ""
        if line.strip() != "up":
            self._holder.kill()
            raise AssertionError("the pod's network namespace could not be made (unshare, ip)")
        self._started: list[subprocess.Popen] = []
        self._output: dict[int, str] = {}

    @property
    def enter(self) -> list[str]:
        joins = ["--net"] if self.root else ["--user", "--net", "--preserve-credentials"]
        return ["nsenter", "-t", str(self._holder.pid), *joins, "--"]

    def run(self, argv: list[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.enter, *argv], capture_output=True, text=True, timeout=timeout, **kw)

    def start(self, argv: list[str], **kw) -> subprocess.Popen:
        """A long-running process of the pod (a server); its output is kept for the failure message."""
        proc = subprocess.Popen(
            [*self.enter, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **kw,
        )
        self._started.append(proc)
        return proc

    def wait_port(self, port: int, proc: subprocess.Popen | None = None, seconds: float = 30) -> None:
        """Until something in the pod accepts on 127.0.0.1:`port`; fails early when `proc` has died."""
        probe = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.run([sys.executable, "-c", probe], timeout=10).returncode == 0:
                return
            if proc is not None and proc.poll() is not None:
                raise AssertionError(
                    f"exited {proc.returncode} before listening on {port}: {self.output(proc)}"
                )
            time.sleep(0.2)
        raise AssertionError(f"nothing listens on {port} in the pod after {seconds} s")

    def output(self, proc: subprocess.Popen) -> str:
        """What a server of the pod printed (stderr, then stdout), once it has stopped."""
        if proc.pid not in self._output:
            out, err = proc.communicate(timeout=10)
            self._output[proc.pid] = f"{err}\n{out}".strip()[-3000:]
        return self._output[proc.pid]

    def close(self) -> None:
        """Stop what was started here, by process group (a server's workers with it), then whatever
        else still lives in the pod's namespace (a process a runtime started in its own session),
        then the holder."""
        for proc in self._started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._started:
            try:
                self.output(proc)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                self.output(proc)
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._holder.kill()
        self._holder.wait(10)

    def _members(self) -> list[int]:
        """The processes in the pod's network namespace but its holder."""
        try:
            ns = os.readlink(f"/proc/{self._holder.pid}/ns/net")
        except OSError:
            return []
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != self._holder.pid:
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/ns/net") == ns:
                        out.append(int(entry))
        return out

    def __enter__(self) -> Pod:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def container(
    root: Path,
    command: list[str],
    *,
    uid: int = 65532,
    env: dict[str, str] | None = None,
    cwd: str = "/",
    binds: dict[Path, str] | None = None,
) -> list[str]:
    """bwrap over an image root as a container runtime runs it: the root as `/`, a fresh /proc, /dev
    and /tmp, the given uid, no capabilities, the network namespace it is started in (the pod's)."""
    mounts = ["--bind", str(root), "/"]
    for host, inside in (binds or {}).items():
        mounts += ["--bind", str(host), inside]
    argv = bwrap_argv(mounts, command, hostname="pod", cwd=cwd, env={"PATH": PATH, **(env or {})})
    i = argv.index("--unshare-all")
    argv[i + 1 : i + 1] = ["--share-net"]
    argv[argv.index("--uid") + 1] = argv[argv.index("--gid") + 1] = str(uid)
    return argv
