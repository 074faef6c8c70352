"""Recipe features end to end on small probe builds: patches, subpackages, -dbg, scanning."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from pkgrepo.builder.sca import analyse
from pkgrepo.package.archive import iter_members, read_head
from tests.helpers.cli import run_cli
from tests.helpers.recipes import make_tarball, mirror_env, mirror_url

C_SOURCE = '#include <stdio.h>\nint main(void){puts("unpatched");return 0;}\n'
PATCH = """--- a/main.c
+++ b/main.c
@@ -1,2 +1,2 @@
 #include <stdio.h>
-int main(void){puts("unpatched");return 0;}
+int main(void){puts("patched");return 0;}
"""


def test_patches_subpackages_and_debug_split(tmp_path: Path):
    sha = make_tarball(
        tmp_path / "s.tar.gz", {"main.c": C_SOURCE, "tool.sh": "#!/usr/bin/env lua\nprint(1)\n"}
    )
    (tmp_path / "notes.txt").write_text("copied as it is\n")
    notes_sha = hashlib.sha256((tmp_path / "notes.txt").read_bytes()).hexdigest()
    recipes = tmp_path / "recipes"
    (recipes / "probe").mkdir(parents=True)
    (recipes / "probe/fix.patch").write_text(PATCH)
    (recipes / "probe.yaml").write_text(f"""package:
  name: probe
  version: "1.0"
  description: probe
  license: MIT
sources:
  - url: {mirror_url(tmp_path, tmp_path / "s.tar.gz")[0]}
    sha256: "{sha}"
  - url: {mirror_url(tmp_path, tmp_path / "notes.txt")[0]}
    sha256: "{notes_sha}"
    extract: false
    destination: extra
patches:
  - file: probe/fix.patch
vars:
  greeting: hi
pipeline:
  # static, so that no library from the host's libc is needed at run time
  - runs: |
      cc -g -O1 -static -o prog main.c
      install -Dm755 prog ${{{{targets.destdir}}}}/usr/bin/prog
      install -Dm755 tool.sh ${{{{targets.destdir}}}}/usr/bin/tool
      ln -s prog ${{{{targets.destdir}}}}/usr/bin/lua  # the tool's interpreter, packaged
      mkdir -p ${{{{targets.destdir}}}}/usr/share/man/man1 ${{{{targets.destdir}}}}/usr/include
      echo ${{{{vars.greeting}}}} > ${{{{targets.destdir}}}}/usr/share/man/man1/prog.1
      echo '/* api */' > ${{{{targets.destdir}}}}/usr/include/probe.h
      install -Dm644 extra/notes.txt ${{{{targets.destdir}}}}/usr/share/doc/probe/notes.txt
  - uses: strip
subpackages:
  - name: probe-tool
    files: [usr/bin/tool]
split:
  dbg: true
""")
    out = tmp_path / "out"
    proc = run_cli(
        "build",
        "probe",
        "--recipes",
        str(recipes),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c"),
        env=mirror_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name.split("-1.0")[0] for p in out.glob("*.pkg.tar.zst"))
    assert names == ["probe", "probe-dbg", "probe-dev", "probe-doc", "probe-tool"]
    root = tmp_path / "root"
    run_cli("install", "--packages", str(out), "--root", str(root), "probe", "probe-doc", check=True)
    assert subprocess.run([root / "usr/bin/prog"], capture_output=True, text=True).stdout == "patched\n"
    assert (root / "usr/share/man/man1/prog.1").read_text() == "hi\n"
    assert (root / "usr/share/doc/probe/notes.txt").read_text() == "copied as it is\n"
    dbg, dbg_files = read_head(next(out.glob("probe-dbg-*.pkg.tar.zst")))
    assert [
        f.path for f in dbg_files if f.type == "file" and not f.path.startswith("var/lib/pkgrepo/sbom/")
    ] == ["usr/lib/debug/usr/bin/prog.debug"]
    assert "probe=1.0-r1" in dbg.depends
    main_members = {m.path: m for m in iter_members(next(out.glob("probe-1.0-*.pkg.tar.zst")))}
    assert b".gnu_debuglink" in main_members["usr/bin/prog"].data
    tool, _ = read_head(next(out.glob("probe-tool-*.pkg.tar.zst")))
    assert tool.depends == ["cmd:lua"] and tool.provides == ["cmd:tool"]


def test_sca_generators(tmp_path: Path):
    root = tmp_path
    (root / "usr/lib/pkgconfig").mkdir(parents=True)
    (root / "usr/lib/pkgconfig/foo.pc").write_text(
        "Name: foo\nVersion: 2.1\nRequires: zlib >= 1.2, libzstd\nRequires.private: liblzma\n"
    )
    (root / "usr/bin").mkdir(parents=True)
    script = root / "usr/bin/run"
    script.write_text("#!/bin/sh -e\necho\n")
    script.chmod(0o755)
    (root / "usr/bin/alias").symlink_to("run")
    data = root / "usr/bin/data.txt"
    data.write_text("not a program")
    found = analyse(root, ["usr/lib/pkgconfig/foo.pc", "usr/bin/run", "usr/bin/alias", "usr/bin/data.txt"])
    assert found.provides == {"pc:foo=2.1", "cmd:run", "cmd:alias"}
    assert found.depends == {"pc:zlib", "pc:libzstd", "cmd:sh"}
