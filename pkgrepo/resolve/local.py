"""A directory of built packages as an index, and the dependency closure over it.

The closure is plain graph traversal: a dependency already met by a chosen
package stays met; otherwise the package of that exact name wins, then the
newest version, then the smallest. The exact minimizer (`pkgrepo resolve`)
replaces this choice where alternatives are real.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from pkgrepo.errors import BadInput
from pkgrepo.package.archive import read_info
from pkgrepo.package.meta import PackageInfo
from pkgrepo.resolve.deps import Dep, parse_dep, satisfied_by
from pkgrepo.resolve.version import sort_key
from pkgrepo.suggest import suggest

SUFFIX = ".pkg.tar.zst"


@dataclass(frozen=True)
class Available:
    info: PackageInfo
    path: Path

    def satisfies(self, dep: Dep) -> bool:
        return satisfied_by(dep, self.info.name, self.info.full_version, self.info.provides)


class PackageDir:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise BadInput(
                f"{self.directory}: packages directory does not exist; build first or pass --packages"
            )
        self.packages = [
            Available(read_info(p), p) for p in sorted(self.directory.glob(f"*{SUFFIX}")) if p.is_file()
        ]

    def candidates(self, dep: Dep) -> list[Available]:
        found = [a for a in self.packages if a.satisfies(dep)]
        # exact name first, newest version, then smallest
        found.sort(key=lambda a: (a.info.installed_size, a.info.name))
        found.sort(key=lambda a: sort_key(a.info.full_version), reverse=True)
        found.sort(key=lambda a: a.info.name != dep.name)
        return found

    def closure(self, roots: list[str]) -> list[Available]:
        """The packages needed for `roots`, each satisfied, in name order."""
        chosen: dict[str, Available] = {}
        queue: deque[tuple[Dep, str]] = deque((parse_dep(r), "request") for r in roots)
        while queue:
            dep, wanted_by = queue.popleft()
            if any(a.satisfies(dep) for a in chosen.values()):
                continue
            cands = [a for a in self.candidates(dep) if a.info.name not in chosen]
            if not cands:
                hint = suggest(dep.name, sorted({a.info.name for a in self.packages}))
                raise BadInput(
                    f"{dep} (needed by {wanted_by}) is provided by no package in {self.directory}{hint}"
                )
            pick = cands[0]
            chosen[pick.info.name] = pick
            for d in pick.info.depends:
                queue.append((parse_dep(d), pick.info.name))
        return [chosen[n] for n in sorted(chosen)]
