#!/usr/bin/env python3
"""README tables from `diat eval lfw --json` reports (scripts/eval/lfw.sh): one row per model for
identity across photos, attributes, and the path's speed. Standard library only.
    lfw_tables.py REPORT.json... > tables.md
"""

import json
import os
import sys


def pct(v):
    return f"{100 * v:.1f} %"


def main():
    reports = []
    for path in sys.argv[1:]:
        with open(path) as f:
            r = json.load(f)
        r["_name"] = os.path.splitext(os.path.basename(path))[0]
        reports.append(r)
    if not reports:
        sys.exit("lfw_tables.py: no reports given")
    r0 = reports[0]
    print(f"Pairs: {os.path.basename(r0['pairs_file'])}, {r0['pairs']} pairs; descriptor distance, "
          f"same person < {r0['same_person_threshold']}.\n")
    print("| model | photos edited / rejected | accuracy before → after | same pairs verified before → after (kept) "
          "| AUC before → after | edited vs own original kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in reports:
        v = {x["condition"]: x for x in r["verification"]}
        b, a = v["before"], v["after edit"]
        kept = a["same_verified"] / b["same_verified"] if b["same_verified"] else float("nan")
        print(f"| {r['_name']} | {r['photos_edited']} / {len(r['rejected'])} "
              f"| {pct(b['accuracy'])} → {pct(a['accuracy'])} "
              f"| {pct(b['same_verified'])} → {pct(a['same_verified'])} ({pct(kept)}) "
              f"| {b['auc']:.4f} → {a['auc']:.4f} | {pct(r['identity_kept'])} |")
    print()
    print("| model | eligible photos | success: identity / blurred input / model "
          "| other paper attributes all unchanged | each (unchanged) | pixels changed outside the region |")
    print("|---|---:|---:|---:|---|---:|")
    for r in reports:
        s = {x["condition"]: x["success"] for x in r["attribute_success"]}
        each = ", ".join(f"{u['attribute']} {pct(u['unchanged'])}" + ("" if u["paper"] else "*")
                         for u in r["unchanged"])
        o = r.get("outside_region")
        outside = f"{o['pixels_changed']} of {o['pixels_changed_anywhere']} changed" if o else "— (global)"
        print(f"| {r['_name']} | {r['eligible']} ({r['eligibility']}) "
              f"| {pct(s['identity'])} / {pct(s['blurred input'])} / {pct(s['model'])} "
              f"| {pct(r['all_paper_unchanged'])} | {each} | {outside} |")
    print("\n\\* not a paper attribute (not in the \"all unchanged\" column).\n")
    print("| model | path photos/s | decode | detect | align | edit | paste back | write | scoring (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in reports:
        t = r["times"]
        print(f"| {r['_name']} | {t['photos_per_second']:.1f} | {t['decode']:.1f} | {t['detect']:.1f} "
              f"| {t['align']:.1f} | {t['edit']:.1f} | {t['paste']:.1f} | {t['write']:.1f} | {t['scoring']:.1f} |")


if __name__ == "__main__":
    main()
