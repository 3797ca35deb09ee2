#!/usr/bin/env python3
"""The allocation sites holding the most memory at the heap's peak, from a dhat-heap.json
(`cargo run --release --features dhat-heap -- ...`, see Cargo.toml).

Usage: scripts/dhat_top.py dhat-heap.json [N]

Each site is printed with its bytes and blocks at the peak (t-gmax) and its first frames inside
tgwatch's own crates, so that allocator, std and library frames do not hide the caller.
"""
import json
import sys


def own_frames(frames, table, limit=4):
    """The first `limit` frames that are tgwatch's code, else the first frames at all."""
    names = [table[index] for index in frames]
    own = [name for name in names if "tgwatch" in name]
    return (own or names)[:limit]


def main():
    path = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with open(path) as file:
        profile = json.load(file)
    table = profile["ftbl"]
    sites = sorted(profile["pps"], key=lambda site: site.get("gb", 0), reverse=True)
    total = sum(site.get("gb", 0) for site in sites)
    print(f"bytes at the peak: {total:,} in {sum(s.get('gbk', 0) for s in sites):,} blocks")
    for site in sites[:count]:
        print(f"{site.get('gb', 0):>14,} bytes {site.get('gbk', 0):>9,} blocks")
        for frame in own_frames(site["fs"], table):
            print(f"      {frame[:160]}")


if __name__ == "__main__":
    main()
