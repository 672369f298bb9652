"""The benchmark's figures: per signal, the sustained rate of both legs and their ratio;
a table on stdout, a JSON file and a plot."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .steps import COLLECTOR, ITEM, Step


def summarize(steps: list[Step], signal: str) -> dict:
    """Sustained rates of both legs over the rates the generator could offer to both (a
    step it fell short on says nothing about the stack), and their ratio. When both legs
    carried every such rate, the ceiling lies above what the generator could offer here
    and the ratio is a lower bound."""
    legs = {target: {s.rate: s for s in steps if s.signal == signal and s.target == target}
            for target in ("end-to-end", "ceiling")}
    if not legs["end-to-end"]:
        ceiling = max((r for r, s in legs["ceiling"].items() if s.sustained), default=0)
        return {"end_to_end_sustained": None, "ceiling_sustained": ceiling, "end_to_end_lossless_max": None,
                "ratio": None, "generator_limit": None, "lower_bound": False}
    offered = sorted(r for r in legs["end-to-end"] if r in legs["ceiling"]
                     and not any(legs[t][r].generator_limited for t in legs))
    best = {t: max((r for r in offered if legs[t][r].sustained), default=0) for t in legs}
    limited = [r for r in legs["end-to-end"] if legs["end-to-end"][r].generator_limited]
    # What the stack carried without loss, whatever the generator managed to offer.
    carried = max((s.accepted / s.window_s for s in legs["end-to-end"].values() if s.lossless and s.window_s),
                  default=0)
    return {"end_to_end_sustained": best["end-to-end"], "ceiling_sustained": best["ceiling"],
            "end_to_end_lossless_max": round(carried),
            "ratio": round(best["end-to-end"] / best["ceiling"], 2) if best["ceiling"] else None,
            "generator_limit": min(limited) if limited else None,
            "lower_bound": bool(offered) and best["end-to-end"] == best["ceiling"] == offered[-1]}


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def report(steps: list[Step], meta: dict, out_json: Path) -> dict:
    """Prints the table and the summary; writes `out_json` and the plot beside it."""
    signals = sorted({s.signal for s in steps}, key=list(ITEM).index)
    summary = {signal: summarize(steps, signal) for signal in signals}
    result = {"meta": meta, "summary": summary, "steps": [asdict(s) for s in steps]}
    out_json.parent.mkdir(exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"{'signal':8} {'target':11} {'rate/s':>7} {'generated':>9} {'offered':>7} {'accepted':>9} {'refused':>7} "
          f"{'failed':>6} {'dropped':>7} {'arrived':>9} {'coll.cpu':>8} {'coll.MiB':>8} {'gen.cpu':>7}  verdict")
    for s in steps:
        coll = s.resources.get(COLLECTOR[s.target], {})
        gen = s.resources.get("telemetrygen", {})
        verdict = "sustained" if s.sustained else ("lossless; " if s.lossless else "LOSS: ") + s.note
        print(f"{s.signal:8} {s.target:11} {s.rate:>7} {_num(s.generated):>9} {s.offered_ratio:>7.0%} "
              f"{s.accepted:>9.0f} {s.refused:>7.0f} {s.failed:>6.0f} {s.dropped:>7.0f} {_num(s.arrived):>9} "
              f"{coll.get('cpu_cores', 0):>8.2f} {coll.get('rss_mib', 0):>8.0f} {gen.get('cpu_cores', 0):>7.2f}  {verdict}")
    print("(offered: what the generator counted / (rate x the seconds items kept arriving at the collector))")
    print()
    for signal, v in summary.items():
        if v["end_to_end_sustained"] is None:
            print(f"{signal}: sustained {v['ceiling_sustained']}/s collector alone; end to end not run")
            continue
        ratio = "n/a" if v["ratio"] is None else f"{'>= ' if v['lower_bound'] else ''}{v['ratio']:.2f}"
        limit = (f" (generator-limited from {v['generator_limit']}/s; the most carried end to end "
                 f"without loss: {v['end_to_end_lossless_max']}/s)" if v["generator_limit"] else "")
        print(f"{signal}: sustained {v['end_to_end_sustained']}/s end to end, {v['ceiling_sustained']}/s "
              f"collector alone{limit}; end-to-end / ceiling = {ratio}")
    out_png = out_json.with_suffix(".png")
    plot(steps, summary, out_png)
    print(f"written: {out_json}, {out_png}")
    return result


def plot(steps: list[Step], summary: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    signals = list(summary)
    fig, axes = plt.subplots(2, len(signals), figsize=(5 * len(signals), 8), squeeze=False)
    for col, signal in enumerate(signals):
        ax = axes[0][col]
        for target, style in (("end-to-end", "o-"), ("ceiling", "s--")):
            ss = [s for s in steps if s.signal == signal and s.target == target and s.window_s]
            if not ss:
                continue
            ax.plot([s.rate for s in ss], [s.accepted / s.window_s for s in ss], style, label=f"{target}: accepted/s")
            if target == "end-to-end" and any(s.arrived is not None for s in ss):
                ax.plot([s.rate for s in ss], [(s.arrived or 0) / s.window_s for s in ss], "^:", label="arrived/s")
        rates = [s.rate for s in steps if s.signal == signal]
        ax.plot(rates, rates, color="grey", linewidth=0.8, label="asked")
        ax.set_title(f"{signal}: asked vs delivered")
        ax.set_xlabel(f"{ITEM[signal]} asked per second")
        ax.legend(fontsize=8)
        ax2 = axes[1][col]
        ss = [s for s in steps if s.signal == signal and s.target == "end-to-end"]
        shown = ("otel-collector", "jaeger", "prometheus", "loki", "telemetrygen")
        if not ss:  # only the collector-alone leg ran (logs without Loki)
            ss = [s for s in steps if s.signal == signal]
            shown = (COLLECTOR["ceiling"], "telemetrygen")
        for svc in (svc for svc in shown if any(svc in s.resources for s in ss)):
            ax2.plot([s.rate for s in ss], [s.resources.get(svc, {}).get("rss_mib", 0) for s in ss], "o-", label=svc)
        ax2.set_title(f"{signal}: peak RSS per component (MiB)")
        ax2.set_xlabel(f"{ITEM[signal]} asked per second")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=80)
