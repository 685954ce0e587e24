// Small hand-written SVG charts (no library): horizontal bars and stacked columns.

import { h, svg } from "./dom.js";

export const PALETTE = ["#3b5bdb", "#12b886", "#f59f00", "#e03131", "#7048e8", "#1098ad", "#868e96"];

/** Horizontal bars for {label: value}. */
export function barChart(values, { id, title } = {}) {
  const entries = Object.entries(values);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const rowHeight = 34;
  const width = 360;
  const labelWidth = 90;
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${entries.length * rowHeight + 8}`, class: "chart", role: "img", "aria-label": title || "" },
    entries.map(([label, value], i) => {
      const y = i * rowHeight + 4;
      const barWidth = Math.max(2, ((width - labelWidth - 50) * value) / max);
      return svg(
        "g",
        {},
        svg("text", { x: 0, y: y + 19, class: "chart-label" }, label),
        svg("rect", { x: labelWidth, y: y + 4, width: width - labelWidth - 50, height: 22, rx: 5, class: "chart-track" }),
        svg("rect", { x: labelWidth, y: y + 4, width: barWidth, height: 22, rx: 5, fill: PALETTE[i % PALETTE.length], class: "chart-bar", "data-value": value }),
        svg("text", { x: labelWidth + barWidth + 6, y: y + 20, class: "chart-value" }, value.toLocaleString()),
      );
    }),
  );
  return h("figure", { class: "chart-card", id }, h("figcaption", {}, title), chart);
}

/** Stacked columns: buckets [{label, parts: {series: n}}], series in a fixed order. */
export function stackedColumns(buckets, series, { id, title } = {}) {
  const width = 720;
  const height = 220;
  const pad = { left: 40, right: 10, top: 10, bottom: 28 };
  const totals = buckets.map((b) => series.reduce((sum, s) => sum + (b.parts[s] || 0), 0));
  const max = Math.max(1, ...totals);
  const innerWidth = width - pad.left - pad.right;
  const innerHeight = height - pad.top - pad.bottom;
  const step = innerWidth / Math.max(1, buckets.length);
  const barWidth = Math.max(2, Math.min(36, step * 0.7));
  const y = (v) => pad.top + innerHeight - (innerHeight * v) / max;
  const grid = [0, 0.5, 1].map((f) =>
    svg(
      "g",
      {},
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y(max * f), y2: y(max * f), class: "chart-grid" }),
      svg("text", { x: pad.left - 6, y: y(max * f) + 4, class: "chart-axis", "text-anchor": "end" }, Math.round(max * f)),
    ),
  );
  const labelEvery = Math.ceil(buckets.length / 8);
  const columns = buckets.map((b, i) => {
    let base = 0;
    const x = pad.left + i * step + (step - barWidth) / 2;
    const rects = series.map((s, k) => {
      const v = b.parts[s] || 0;
      const rect = svg("rect", { x, y: y(base + v), width: barWidth, height: y(base) - y(base + v), fill: PALETTE[k % PALETTE.length], class: "chart-bar", "data-value": v },
        svg("title", {}, `${b.label} · ${s}: ${v}`));
      base += v;
      return v ? rect : null;
    });
    return svg(
      "g",
      {},
      rects,
      i % labelEvery === 0 ? svg("text", { x: x + barWidth / 2, y: height - 8, class: "chart-axis", "text-anchor": "middle" }, b.label) : null,
    );
  });
  const legend = h(
    "div",
    { class: "legend" },
    series.map((s, k) => h("span", {}, svgSwatch(PALETTE[k % PALETTE.length]), s)),
  );
  return h(
    "figure",
    { class: "chart-card wide", id },
    h("figcaption", {}, title),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title || "" }, grid, columns),
    legend,
  );
}

function svgSwatch(color) {
  return svg("svg", { viewBox: "0 0 10 10", class: "swatch" }, svg("rect", { width: 10, height: 10, rx: 2, fill: color }));
}
