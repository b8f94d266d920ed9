#!/usr/bin/env python3
"""gen-repo.py DIR NFILES: write NFILES small text files under DIR in 100-file directories.
Every 10th file contains the word `needle` (what the git grep workload counts)."""
import os
import sys

root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "src", f"d{i // 100:04d}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(f"file {i}\n")
        f.write("lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * (1 + i % 7))
        if i % 10 == 0:
            f.write("a needle in the haystack\n")
