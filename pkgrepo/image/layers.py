"""Layers: which packages share a layer, and each layer as a deterministic tar.

The rule (stable, so dev and prod share their lower layers):

- prod: one layer per package in install order (dependencies first, ties by
  name), within the spec's budget `layers`: the last layer is the base files
  and the package database, and when the closure has more packages than the
  budget leaves, the packages at the top of the order (those that change most
  often) share the last package layer;
- dev: exactly the prod image's layers, then the same rule over the packages
  dev adds, then one layer with what dev has that prod does not (files prod
  minimization dropped, the dev package database).

A tar lists its entries sorted by path, with numeric owners and no names,
every mtime SOURCE_DATE_EPOCH, and the parent directories of its files.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass

from pkgrepo.image.tree import Node


@dataclass(frozen=True)
class LayerPlan:
    title: str
    paths: list[str]


def group_packages(order: list[str], budget: int) -> list[list[str]]:
    """Split package names (in install order) into at most `budget` groups."""
    if budget <= 0 or not order:
        return []
    if len(order) <= budget:
        return [[n] for n in order]
    return [[n] for n in order[: budget - 1]] + [order[budget - 1 :]]


def plan_layers(
    tree: dict[str, Node],
    owners: dict[str, str],
    groups: list[list[str]],
    top_title: str,
    versions: dict[str, str],
    below: dict[str, Node] | None = None,
) -> list[LayerPlan]:
    """Assign every entry of `tree` not already (identically) in `below` to a layer."""
    below = below or {}
    index = {name: i for i, group in enumerate(groups) for name in group}
    buckets: list[list[str]] = [[] for _ in groups]
    top: list[str] = []
    has_children = {posixpath.dirname(p) for p in tree}
    for path, node in tree.items():
        old = below.get(path)
        if old is not None and old.same_as(node):
            continue
        if node.kind == "dir":
            if old is not None or path not in has_children:
                top.append(path)  # an empty directory, or one whose mode or owner changed
            continue
        owner = owners.get(path)
        (buckets[index[owner]] if owner in index else top).append(path)
    plans = [
        LayerPlan(", ".join(f"{n} {versions[n]}" for n in group), bucket)
        for group, bucket in zip(groups, buckets, strict=True)
        if bucket
    ]
    return [*plans, LayerPlan(top_title, top)]


def layer_tar(tree: dict[str, Node], paths: list[str], epoch: int) -> bytes:
    """An uncompressed tar of `paths` and their parent directories."""
    names = set(paths)
    for p in paths:
        d = posixpath.dirname(p)
        while d and d not in names:
            names.add(d)
            d = posixpath.dirname(d)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(names):
            node = tree[path]
            info = tarfile.TarInfo(path)
            info.mode = node.mode
            info.uid, info.gid = node.uid, node.gid
            info.uname = info.gname = ""
            info.mtime = epoch
            if node.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif node.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = node.target or ""
                tar.addfile(info)
            else:
                data = node.read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
