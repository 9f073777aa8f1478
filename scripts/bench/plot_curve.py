#!/usr/bin/env python3
"""Draws a trial's validation curve as a small self-contained SVG (no plotting library): one
point per validation of METRIC against epochs, read from a run's trial-N/metrics.jsonl, with an
optional horizontal reference line (e.g. a published result).

    plot_curve.py METRICS.jsonl OUT.svg [--metric validation_accuracy] [--reference 0.74]
                  [--title TEXT] [--percent]
"""
import argparse, json

ap = argparse.ArgumentParser()
ap.add_argument("metrics")
ap.add_argument("out")
ap.add_argument("--metric", default="validation_accuracy")
ap.add_argument("--reference", type=float)
ap.add_argument("--reference-label", default="published")
ap.add_argument("--title", default="")
ap.add_argument("--percent", action="store_true", help="show values as percentages")
a = ap.parse_args()

pts = []
with open(a.metrics) as f:
    for line in f:
        r = json.loads(line)
        if r.get("kind") == "validation" and a.metric in r.get("metrics", {}):
            pts.append((r["epochs"], r["metrics"][a.metric]))
if not pts:
    raise SystemExit(f"plot_curve: no validation with {a.metric} in {a.metrics}")
pts.sort()

W, H, L, R, T, B = 640, 360, 60, 20, 40, 45
x_max = max(p[0] for p in pts)
values = [p[1] for p in pts] + ([a.reference] if a.reference is not None else [])
y_lo, y_hi = min(values), max(values)
pad = (y_hi - y_lo) * 0.08 or 0.05
y_lo, y_hi = y_lo - pad, y_hi + pad
sx = lambda x: L + (W - L - R) * x / x_max
sy = lambda y: T + (H - T - B) * (1 - (y - y_lo) / (y_hi - y_lo))
fmt = (lambda v: f"{100 * v:.0f}%") if a.percent else (lambda v: f"{v:.3g}")

out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{a.title}</text>']
for i in range(6):  # horizontal grid and labels
    v = y_lo + (y_hi - y_lo) * i / 5
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
step = max(1, round(x_max / 8))
x = 0
while x <= x_max + 1e-9:
    out.append(f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:g}</text>')
    x += step
out.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" text-anchor="middle">epochs</text>')
out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="black"/>')
out.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="black"/>')
if a.reference is not None:
    y = sy(a.reference)
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c33" '
               f'stroke-dasharray="6 4"/>')
    out.append(f'<text x="{W - R - 4}" y="{y - 6:.1f}" text-anchor="end" fill="#c33">'
               f'{a.reference_label} {fmt(a.reference)}</text>')
poly = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
out.append(f'<polyline points="{poly}" fill="none" stroke="#1f6feb" stroke-width="2"/>')
for x, y in pts:
    out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#1f6feb"/>')
last = pts[-1]
out.append(f'<text x="{W - R - 4}" y="{H - B - 10}" text-anchor="end" '
           f'fill="#1f6feb">{a.metric} {fmt(last[1])} after {last[0]:g} epochs</text>')
out.append("</svg>")
with open(a.out, "w") as f:
    f.write("\n".join(out) + "\n")
