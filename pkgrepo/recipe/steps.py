"""The built-in steps a recipe `uses:`, as data (melange's pipelines): adding a step is adding an entry.

Each entry names its `with:` inputs with their defaults and a `runs` template, a
`/bin/sh` script in which `${{inputs.NAME}}`, `${{targets.destdir}}`,
`${{split.dbg}}` (`true`/`false`) and `${{build.jobs}}` are filled in when the
step runs (`pkgrepo.builder.commands`). The recipe model checks `uses:` and
`with:` against this table, so it lives in the recipe room, below the builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONFIGURE = (
    "./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var "
    "--mandir=/usr/share/man --infodir=/usr/share/info"
)

# Arguments: `kind file` pairs, kind `object` (archives and relocatables) or `program`
# (executables and shared objects), each file relative to the install root.
STRIP = """
while [ $# -gt 0 ]; do
  kind=$1 f=./$2; shift 2  # ./: no name is read as an option
  if [ "$kind" = object ]; then
    strip --strip-debug "$f"
  elif [ ${{split.dbg}} = true ]; then
    d=usr/lib/debug/$f.debug
    mkdir -p "${d%/*}"
    objcopy --only-keep-debug "$f" "$d"
    strip --strip-unneeded "$f"
    objcopy --add-gnu-debuglink="$d" "$f"
  else
    strip --strip-unneeded "$f"
  fi
done
"""


@dataclass(frozen=True)
class BuiltinStep:
    description: str
    runs: str
    inputs: dict[str, str] = field(default_factory=dict)  # `with:` key -> default
    # None: /build/src or the step's `working-directory:`, like a `runs:` step.
    working_directory: str | None = None
    trace: bool = True  # sh -x: every command in the log
    # Run with the staged tree's ELF files as `kind file` arguments (see STRIP); not at all without any.
    elf_files: bool = False


STEPS: dict[str, BuiltinStep] = {
    "autoconf/configure": BuiltinStep(
        "run ./configure for the /usr prefix", CONFIGURE + " ${{inputs.opts}}", {"opts": ""}
    ),
    "autoconf/make": BuiltinStep(
        "make with the build's job count", "make -j${{build.jobs}} ${{inputs.opts}}", {"opts": ""}
    ),
    "autoconf/make-install": BuiltinStep(
        "make install into the main package's install root",
        "make install DESTDIR=${{targets.destdir}} ${{inputs.opts}}",
        {"opts": ""},
    ),
    "make": BuiltinStep(
        "make a target with the build's job count",
        "make -j${{build.jobs}} ${{inputs.target}} ${{inputs.opts}}",
        {"target": "", "opts": ""},
    ),
    "strip": BuiltinStep(
        "strip ELF files (debug info kept in usr/lib/debug with split.dbg)",
        STRIP,
        working_directory="${{targets.destdir}}",
        trace=False,
        elf_files=True,
    ),
}
