// Line charts drawn as inline SVG: nice axes, gaps for missing values, vertical marks, and a hover
// read-out. No dependencies. lineChart(element, options) redraws the element's chart; it keeps the
// options so the chart follows the element's width when the page is resized.

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 220;
const MARGIN = { right: 16, bottom: 44, left: 54 };

export const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"];

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

// Round tick steps (1, 2 or 5 times a power of ten) covering [lo, hi] with about `count` ticks.
export function ticks(lo, hi, count) {
  const raw = (hi - lo) / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return { values: out, step };
}

export function formatNumber(value, step) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(1);
  if (step !== undefined) {
    const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step))));
    return value.toFixed(decimals);
  }
  return Number(value.toPrecision(4)).toString();
}

function extent(series, pick, include, positive = false) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const point of s.values) {
      const v = pick(point);
      if (v !== null && Number.isFinite(v) && (!positive || v > 0)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (!Number.isFinite(lo)) return null;
  if (include?.min !== undefined) lo = Math.min(lo, include.min);
  if (include?.max !== undefined) hi = Math.max(hi, include.max);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return positive ? [lo / 2, hi * 2] : [lo - pad, hi + pad];
  }
  return [lo, hi];
}

// Linear: the range widened to whole tick steps. Log: the range padded a little, ticks at 1, 2 and 5
// times powers of ten (only powers of ten when it spans many decades). `at` maps a value to 0..1.
function yAxis(series, options) {
  const positive = extent(series, (p) => p[1], options.include, true);
  if (options.log && positive) {
    const [lo, hi] = positive.map(Math.log10);
    const pad = (hi - lo) * 0.05;
    const domain = [lo - pad, hi + pad];
    const steps = hi - lo > 2.5 ? [1] : [1, 2, 5];
    let values = [];
    for (let d = Math.floor(domain[0]); d <= Math.ceil(domain[1]); d += 1) {
      for (const m of steps) {
        const v = m * 10 ** d;
        if (Math.log10(v) >= domain[0] && Math.log10(v) <= domain[1]) values.push(Number(v.toPrecision(6)));
      }
    }
    if (values.length < 3) {
      // Less than a decade: round linear ticks read better than a lone power of ten.
      values = ticks(10 ** domain[0], 10 ** domain[1], 5).values.filter((v) => v > 0);
    }
    const at = (v) => (v > 0 ? (Math.log10(v) - domain[0]) / (domain[1] - domain[0]) : null);
    return { values, step: undefined, at };
  }
  const ys = extent(series, (p) => p[1], options.include);
  if (!ys) return null;
  const { step } = ticks(ys[0], ys[1], 4);
  const first = Math.floor(ys[0] / step + 1e-9);
  const last = Math.ceil(ys[1] / step - 1e-9);
  const values = [];
  for (let i = first; i <= last; i += 1) values.push(Number((i * step).toPrecision(12)));
  const [lo, hi] = [first * step, last * step];
  return { values, step, at: (v) => (v - lo) / (hi - lo) };
}

// Keeps the first, last, lowest and highest point of each pixel column, so a long run costs as many
// SVG vertices as the chart is wide and still shows every spike.
function decimate(values, xScale, width) {
  if (values.length <= width * 2) return values;
  const kept = [];
  let column = null;
  let bucket = [];
  const flush = () => {
    if (!bucket.length) return;
    const finite = bucket.filter((p) => p[1] !== null);
    const picks = new Set([bucket[0], bucket[bucket.length - 1]]);
    if (finite.length) {
      picks.add(finite.reduce((a, b) => (b[1] < a[1] ? b : a)));
      picks.add(finite.reduce((a, b) => (b[1] > a[1] ? b : a)));
    }
    kept.push(...bucket.filter((p) => picks.has(p)));
    bucket = [];
  };
  for (const point of values) {
    const c = Math.round(xScale(point[0]));
    if (c !== column) {
      flush();
      column = c;
    }
    bucket.push(point);
  }
  flush();
  return kept;
}

function pathOf(values, x, y) {
  let d = "";
  let pen = false;
  for (const [px, value] of values) {
    const py = value === null || !Number.isFinite(value) ? null : y(value);
    if (py === null) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${x(px).toFixed(1)},${py.toFixed(1)}`;
    pen = true;
  }
  return d;
}

function nearest(values, target) {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid][0] < target) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(values[lo - 1][0] - target) <= Math.abs(values[lo][0] - target)) lo -= 1;
  return values[lo];
}

function legend(series) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const s of series) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = s.dashed ? "swatch dashed" : "swatch";
    swatch.style.setProperty("--color", s.color);
    item.append(swatch, document.createTextNode(s.label));
    list.append(item);
  }
  return list;
}

function describe(options, domainX) {
  const parts = options.series.map((s) => {
    const last = [...s.values].reverse().find((p) => p[1] !== null);
    return last ? `${s.label} ${options.format(last[1])} at epoch ${last[0]}` : `${s.label}: no value yet`;
  });
  const marks = (options.markers || []).map((m) => `${m.label} at epoch ${m.x}`);
  return `${options.title}, epochs ${domainX[0]} to ${domainX[1]}: ${[...parts, ...marks].join("; ")}.`;
}

function draw(element) {
  const options = element._chart;
  const format = options.format || ((v) => formatNumber(v));
  element.replaceChildren();
  if (options.legend !== false) element.append(legend(options.series));

  const frame = document.createElement("div");
  frame.className = "chart-frame";
  element.append(frame);
  const xs = extent(options.series, (p) => p[0]);
  const axis = yAxis(options.series, options);
  if (!xs || !axis) {
    const empty = document.createElement("p");
    empty.className = "chart-empty";
    empty.textContent = options.empty || "No data yet.";
    frame.append(empty);
    return;
  }

  const markers = options.markers || [];
  const top = markers.length ? 34 : 12; // a band above the plot for the marks' labels
  const width = Math.max(frame.clientWidth || element.clientWidth || 480, 240);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - top - MARGIN.bottom;
  const domainX = [Math.min(xs[0], 1), Math.max(xs[1], 2)];
  const x = (v) => MARGIN.left + ((v - domainX[0]) / (domainX[1] - domainX[0])) * plotW;
  const y = (v) => {
    const at = axis.at(v);
    return at === null ? null : top + (1 - at) * plotH;
  };
  const scale = { x, y, top, domainX, plotW, width, format };

  const root = svg("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img" });
  root.setAttribute("aria-label", describe({ ...options, format }, domainX));
  root.append(grid(axis, scale), ...markers.map((mark, i) => marker(mark, markers[i - 1], scale)));

  for (const s of options.series) {
    const values = decimate(s.values, x, plotW);
    const line = svg("path", {
      class: "series",
      d: pathOf(values, x, y),
      stroke: s.color,
      "stroke-width": s.width || 2,
      fill: "none",
      "data-series": s.label,
      "data-points": s.values.filter((p) => p[1] !== null).length,
    });
    if (s.dashed) line.setAttribute("stroke-dasharray", "5 4");
    root.append(line);
    if (s.values.length <= 40) {
      for (const [px, py] of s.values) {
        const cy = py === null ? null : y(py);
        if (cy !== null) root.append(svg("circle", { class: "dot", cx: x(px), cy, r: 2.5, fill: s.color }));
      }
    }
  }
  for (const point of options.points || []) {
    const cy = y(point.y);
    if (cy !== null) root.append(svg("circle", { class: "highlight", cx: x(point.x), cy, r: 5, stroke: point.color }));
  }

  frame.append(root);
  hover(frame, root, options, scale);
}

function grid(axis, { x, y, top, domainX, plotW, width, format }) {
  const g = svg("g", { class: "grid" });
  const bottom = HEIGHT - MARGIN.bottom;
  for (const v of axis.values) {
    g.append(svg("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }));
    const label = svg("text", { x: MARGIN.left - 8, y: y(v), dy: "0.32em", "text-anchor": "end" });
    label.textContent = format(v, axis.step);
    g.append(label);
  }
  const xTicks = ticks(domainX[0], domainX[1], Math.max(3, Math.floor(plotW / 70)));
  for (const v of xTicks.values.filter(Number.isInteger)) {
    const label = svg("text", { x: x(v), y: bottom + 18, "text-anchor": "middle" });
    label.textContent = String(v);
    g.append(label);
  }
  const title = svg("text", { class: "axis-title", x: MARGIN.left + plotW / 2, y: bottom + 36, "text-anchor": "middle" });
  title.textContent = "epoch";
  g.append(title);
  g.append(svg("line", { class: "axis", x1: MARGIN.left, x2: width - MARGIN.right, y1: bottom, y2: bottom }));
  g.append(svg("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: top, y2: bottom }));
  return g;
}

// A vertical mark with its label in the band above the plot: to the left of the line for the first
// mark, to the right for the next one, so "best" and "stop" never cover each other or the curves.
function marker(mark, previous, { x, top, width }) {
  const g = svg("g", { class: `marker ${mark.kind || ""}` });
  const at = x(mark.x);
  g.append(svg("line", { x1: at, x2: at, y1: top - 4, y2: HEIGHT - MARGIN.bottom }));
  const label = svg("text", { y: top - 10 });
  label.textContent = mark.label;
  const room = mark.label.length * 6.5;
  let side = previous ? "right" : "left";
  if (side === "left" && at - room < MARGIN.left - 40) side = "right";
  if (side === "right" && at + room > width) {
    side = "left";
    label.setAttribute("y", top - 22);
  }
  label.setAttribute("x", side === "left" ? at - 4 : at + 4);
  label.setAttribute("text-anchor", side === "left" ? "end" : "start");
  g.append(label);
  return g;
}

function hover(frame, root, options, scale) {
  const guide = svg("line", { class: "guide", y1: scale.top, y2: HEIGHT - MARGIN.bottom, visibility: "hidden" });
  root.append(guide);
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.hidden = true;
  frame.append(tip);
  const dots = options.series.map((s) => {
    const dot = svg("circle", { r: 4, fill: s.color, class: "hover-dot", visibility: "hidden" });
    root.append(dot);
    return dot;
  });

  root.addEventListener("pointermove", (event) => {
    const box = root.getBoundingClientRect();
    const px = event.clientX - box.left;
    const epoch = Math.round(
      scale.domainX[0] + ((px - MARGIN.left) / scale.plotW) * (scale.domainX[1] - scale.domainX[0]),
    );
    const rows = [];
    options.series.forEach((s, i) => {
      const point = s.values.length ? nearest(s.values, epoch) : null;
      const cy = point && point[1] !== null ? scale.y(point[1]) : null;
      if (cy === null) {
        dots[i].setAttribute("visibility", "hidden");
        return;
      }
      dots[i].setAttribute("cx", scale.x(point[0]));
      dots[i].setAttribute("cy", cy);
      dots[i].setAttribute("visibility", "visible");
      rows.push([s, point]);
    });
    if (!rows.length) return;
    const at = rows[0][1][0];
    guide.setAttribute("x1", scale.x(at));
    guide.setAttribute("x2", scale.x(at));
    guide.setAttribute("visibility", "visible");
    tip.replaceChildren();
    const head = document.createElement("strong");
    head.textContent = `Epoch ${at}`;
    tip.append(head);
    for (const [s, point] of rows) {
      const row = document.createElement("div");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.setProperty("--color", s.color);
      const value = document.createElement("b");
      value.textContent = scale.format(point[1]);
      row.append(swatch, document.createTextNode(s.label), value);
      tip.append(row);
    }
    tip.hidden = false;
    const left = scale.x(at) + 12;
    tip.style.left = `${left + tip.offsetWidth > scale.width ? scale.x(at) - tip.offsetWidth - 12 : left}px`;
  });
  root.addEventListener("pointerleave", () => {
    tip.hidden = true;
    guide.setAttribute("visibility", "hidden");
    for (const dot of dots) dot.setAttribute("visibility", "hidden");
  });
}

const resized = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const element = entry.target;
    if (element._chart && Math.abs(entry.contentRect.width - (element._chartWidth || 0)) > 1) {
      element._chartWidth = entry.contentRect.width;
      draw(element);
    }
  }
});

/**
 * Draw (or redraw) a line chart inside `element`.
 * options: title; series [{label, color, values: [[epoch, value|null], ...] sorted by epoch, dashed}];
 * markers [{x, label, kind}] (vertical lines); points [{x, y, color}] (ringed points);
 * format(value, step) for the y axis; include {min, max} to widen the y range; empty (text while
 * there is no data); legend: false to leave the legend out; log: true for a logarithmic y axis.
 */
export function lineChart(element, options) {
  element._chart = options;
  element._chartWidth = element.clientWidth;
  draw(element);
  resized.observe(element);
}
