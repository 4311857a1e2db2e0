"""bench/results/*.md: the figures as a table, with the machine and the data they came from."""

from __future__ import annotations

import math


def _number(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit in ("ms", "s"):
        return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:,.0f} {unit}"


def markdown(result: dict) -> str:
    m, plan = result["machine"], result["plan"]
    lines = [
        f"# Benchmark results ({plan['name']} run)",
        "",
        "Written by `make bench` (`python -m bench`); how each figure is measured, and what was",
        "found and changed: [bench/README.md](../README.md). Every figure is the median of "
        f"{plan['runs']} runs (page times: the median of {plan['runs']} rounds' p95 of "
        f"{plan['loads']} loads).",
        "",
        f"- Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}",
        f"- Database: {m['postgresql']} ({m['server']}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(m["postgresql_settings"].items()))
        + ")",
        f"- Commit {m['commit']}; load average at the start {m['load_average_at_start']:.2f}; "
        f"whole run {result['seconds']:.0f} s",
    ]
    for scale, size in result["data"].items():
        lines.append(
            f"- Data {scale}: {size['users']:,} users, {size['usage_rows']:,} usage rows, "
            f"{size['daily_rows']:,} daily roll-up rows, {size['messages']:,} agent messages "
            f"(loaded in {size['load_seconds']} s)"
        )
    lines += [
        "",
        "| figure | value | reference | reference value | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in result["figures"]:
        ratio = "—" if f["ratio"] is None else f"{f['ratio']:.2f}"
        met = {True: "yes", False: "**no**", None: "—"}[f["met"]]
        note = f" ({f['note']})" if f["note"] else ""
        reference = _number(f["reference"], f.get("reference_unit") or f["unit"])
        lines.append(
            f"| {f['label']}{note} | {_number(f['value'], f['unit'])} | {f['reference_label']} "
            f"| {reference} | {ratio} | {f['target'] or '—'} | {met} |"
        )
    lines.append("")
    return "\n".join(lines)
