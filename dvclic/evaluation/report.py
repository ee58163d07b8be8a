"""The short Markdown summary of a results file (printed at the end and saved as results.md)."""

from __future__ import annotations

from typing import Any


def _fmt(entry: dict[str, Any]) -> str:
    value = entry["bd_rate"]
    return "n/a" if value is None else f"{value:+.1f}"


def markdown_summary(results: dict[str, Any]) -> str:
    """BD-rate table (rows: sequences and class means; columns: test vs anchor, RGB / YUV) and a
    mean-point table per label."""
    proto = results["protocol"]
    tests, anchors = proto["labels"]["dvclic"], proto["labels"]["anchors"]
    lines = [
        f"# dvclic evaluation: {proto['dataset']['name']} ({len(results['sequences'])} sequences)",
        "",
        f"- frames: {proto['frames']}; intra period: {proto['intra_period']}; {proto['picture_handling']['statement']}",
        f"- device: {proto['device']}; colour: {proto['colour_conversion'].split(';')[0]}",
        f"- BD-rate: {proto['bd_rate']['method']} interpolation, PSNR-RGB / PSNR-YUV, % "
        "(negative = fewer bits than the anchor); " + proto["bd_rate"]["class_rule"],
        "",
    ]
    reasons: dict[str, list[str]] = {}  # reason -> "sequence: test vs anchor" entries
    if tests and anchors:
        pairs = [(t, a) for t in tests for a in anchors]
        lines.append("| sequence | class | " + " | ".join(f"{t} vs {a}" for t, a in pairs) + " |")
        lines.append("|---|---|" + "---|" * len(pairs))
        seq_classes = {name: info["class"] for name, info in proto["sequences"].items()}

        def cells(kind: str, key: str) -> list[str]:
            out = []
            for t, a in pairs:
                entry = results["bd_rate"][t][a][kind].get(key)
                if entry is None:
                    out.append("–")
                    continue
                for m in ("psnr_rgb", "psnr_yuv"):
                    if kind == "per_sequence" and entry[m]["bd_rate"] is None and entry[m].get("reason"):
                        where = f"{key} {t} vs {a}"
                        entries = reasons.setdefault(entry[m]["reason"], [])
                        if where not in entries:
                            entries.append(where)
                out.append(f"{_fmt(entry['psnr_rgb'])} / {_fmt(entry['psnr_yuv'])}")
            return out

        for cls in dict.fromkeys(seq_classes.values()):
            for name in (n for n, c in seq_classes.items() if c == cls):
                lines.append(f"| {name} | {cls} | " + " | ".join(cells("per_sequence", name)) + " |")
            lines.append(f"| **{cls} (mean)** | | " + " | ".join(cells("per_class", cls)) + " |")
        lines.append("")
    for reason, where in list(reasons.items())[:6]:
        lines.append(f"n/a: {reason} ({', '.join(where[:3])}{f' and {len(where) - 3} more' if len(where) > 3 else ''})")
    if len(reasons) > 6:
        lines.append(f"n/a: {len(reasons) - 6} more reasons in results.json")
    if reasons:
        lines.append("")
    lines.append("| label | point | mean bpp | PSNR-RGB | PSNR-YUV | MS-SSIM | enc fps | dec fps |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for label in list(tests) + list(anchors):
        curves = [labels[label] for labels in results["sequences"].values() if label in labels]
        if not curves:
            continue
        for i in range(min(len(c) for c in curves)):
            pts = [c[i] for c in curves]
            point = f"q{pts[0]['quality']}" if "quality" in pts[0] else f"crf {pts[0]['crf']}"

            def mean(key: str, pts: list[dict[str, Any]] = pts) -> float:
                return sum(p[key] for p in pts) / len(pts)

            lines.append(f"| {label} | {point} | {mean('bpp'):.4f} | {mean('psnr_rgb'):.2f} | {mean('psnr_yuv'):.2f} "
                         f"| {mean('ms_ssim'):.4f} | {mean('encode_fps'):.2f} | {mean('decode_fps'):.2f} |")
    return "\n".join(lines) + "\n"
