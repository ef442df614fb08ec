#!/usr/bin/env python3
"""Writes a git fast-import stream of a synthetic history to stdout: COMMITS commits on main,
a one-commit side branch merged every 100 commits, a release tag every COMMITS/TAGS commits
(patch releases mostly, a minor bump every tenth), conventional-commit messages with some
`fix:` commits. Deterministic: the same arguments give the same repository.

    python3 bench/gen_history.py 1000000 5000 | git fast-import --quiet
"""
import sys

def main():
    commits = int(sys.argv[1])
    tags = int(sys.argv[2])
    every = max(1, commits // tags)
    out = sys.stdout.buffer
    w = out.write
    t = 1_600_000_000
    mark = 0
    last_main = None
    minor, patch, released = 0, 0, 0
    for i in range(commits):
        t += 60
        side = i % 100 == 99
        if side:
            # A side commit on its own branch, then merged into main.
            mark += 1
            side_mark = mark
            w(b"commit refs/heads/side\nmark :%d\n" % side_mark)
            w(b"author Dev <dev@example.com> %d +0000\ncommitter Dev <dev@example.com> %d +0000\n" % (t - 30, t - 30))
            msg = b"feat: side work %d\n" % i
            w(b"data %d\n%s" % (len(msg), msg))
            if last_main is not None:
                w(b"from :%d\n" % last_main)
            w(b"M 100644 inline side/s%d.txt\ndata 8\n%07d\n" % (i % 97, i))
        mark += 1
        w(b"commit refs/heads/main\nmark :%d\n" % mark)
        w(b"author Dev <dev@example.com> %d +0000\ncommitter Dev <dev@example.com> %d +0000\n" % (t, t))
        if side:
            msg = b"Merge branch side %d\n" % i
        elif i % 50 == 7:
            msg = b"fix: correct thing %d\n" % i
        else:
            msg = b"feat: change %d\n" % i
        w(b"data %d\n%s" % (len(msg), msg))
        if last_main is not None:
            w(b"from :%d\n" % last_main)
        if side:
            w(b"merge :%d\n" % side_mark)
        # Files spread over 100 directories of 10, like a real tree: each commit rewrites
        # the root, src/ and one directory, not one huge flat tree.
        w(b"M 100644 inline src/d%d/f%d.txt\ndata 8\n%07d\n" % (i % 100, (i // 100) % 10, i))
        last_main = mark
        if (i + 1) % every == 0 and released < tags:
            released += 1
            if released % 10 == 0:
                minor, patch = minor + 1, 0
            else:
                patch += 1
            w(b"reset refs/tags/v1.%d.%d\nfrom :%d\n" % (minor, patch, mark))
    w(b"done\n")

main()
