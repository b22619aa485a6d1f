// How the runs pages are drawn: tables built as DOM nodes (every value set as text) and loss curves drawn with
// the vendored Chart.js, in the page's own colours (light or dark).
/* global Chart */
import { markLanguage } from "./markdown.js";

const PALETTE = ["#2f6fdf", "#d9480f", "#2b8a3e", "#9c36b5", "#c92a2a", "#0b7285", "#e67700", "#5c940d"];
const VARIANT_ORDER = ["base", "adapter", "chosen"];

// An element with text (Chinese marked lang="zh").
export function el(tag, text = "", className = "") {
  const element = document.createElement(tag);
  if (text !== "") {
    element.textContent = text;
    markLanguage(element, String(text));
  }
  if (className) element.className = className;
  return element;
}

// A link to `href` reading `text`.
export function link(href, text) {
  const a = el("a", text);
  a.href = href;
  return a;
}

// A number for people: `digits` decimals, or "–" when there is none.
export function num(value, digits = 2) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

// A status badge.
export function statusBadge(status) {
  return el("span", status, `status ${status}`);
}

// Fill `table` with a header row and body rows; each cell is a string, a number or a node.
export function fillTable(table, head, rows, caption = "") {
  const cell = (tag, value, scope) => {
    const text = value === null || value === undefined ? "–" : String(value);
    const element = value instanceof Node ? el(tag) : el(tag, text);
    if (value instanceof Node) element.append(value);
    if (scope) element.scope = scope;
    return element;
  };
  const parts = [];
  if (caption) parts.push(el("caption", caption, "visually-hidden"));
  if (head.length) {
    const thead = el("thead");
    const tr = el("tr");
    for (const h of head) tr.append(cell("th", h, "col"));
    thead.append(tr);
    parts.push(thead);
  }
  const tbody = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((value, i) => tr.append(cell(i === 0 ? "th" : "td", value, i === 0 ? "row" : "")));
    tbody.append(tr);
  }
  parts.push(tbody);
  table.replaceChildren(...parts);
}

// (label, value) rows as a two-column table.
export function fillPairs(table, pairs, caption) {
  const tbody = el("tbody");
  for (const [label, value] of pairs) {
    const th = el("th", label);
    th.scope = "row";
    const tr = el("tr");
    tr.append(th, el("td", String(value)));
    tbody.append(tr);
  }
  table.replaceChildren(el("caption", caption, "visually-hidden"), tbody);
}

// The variants a `{measure: {variant: value}}` holds, in the report's order.
export function variantsOf(scores) {
  const seen = new Set(Object.values(scores).flatMap((values) => Object.keys(values)));
  return [...VARIANT_ORDER.filter((v) => seen.has(v)), ...[...seen].filter((v) => !VARIANT_ORDER.includes(v))];
}

// A score table: a row per measure, a column per variant.
export function scoreTable(scores, caption) {
  const table = el("table");
  const variants = variantsOf(scores);
  fillTable(table, ["measure", ...variants], Object.entries(scores)
    .map(([measure, values]) => [measure, ...variants.map((v) => num(values[v], 4))]), caption);
  return table;
}

// "exact_match 0.10 → 0.50" per measure a run scored on both base and adapter.
export function scoreSummary(scores) {
  return Object.entries(scores)
    .filter(([, values]) => "adapter" in values)
    .map(([measure, values]) => `${measure} ${num(values.base)} → ${num(values.adapter)}`).join("; ");
}

const DARK = matchMedia("(prefers-color-scheme: dark)");

function colours() {
  const style = getComputedStyle(document.documentElement);
  return { text: style.getPropertyValue("--fg").trim(), grid: style.getPropertyValue("--line").trim() };
}

// Give a chart's axes and legend the page's current colours (they change with dark mode).
function recolour(chart) {
  const { text, grid } = colours();
  for (const axis of Object.values(chart.options.scales)) {
    axis.title.color = text;
    axis.ticks.color = text;
    axis.grid.color = grid;
  }
  chart.options.plugins.legend.labels.color = text;
  chart.update("none");
}

// A line chart of loss per step on `canvas`, a line per curve ({label, step, loss}); returns the Chart.
export function lossChart(canvas, curves) {
  const { text, grid } = colours();
  const axis = (title) => ({
    type: "linear", title: { display: true, text: title, color: text },
    ticks: { color: text }, grid: { color: grid },
  });
  const chart = new Chart(canvas, {
    type: "line",
    data: {
      datasets: curves.map((c, i) => ({
        label: c.label, data: c.step.map((step, j) => ({ x: step, y: c.loss[j] })),
        borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
        borderWidth: 1.5, pointRadius: c.step.length > 40 ? 0 : 2,
      })),
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      interaction: { mode: "nearest", intersect: false },
      scales: { x: axis("step"), y: axis("loss (answer tokens)") },
      plugins: { legend: { display: curves.length > 1, labels: { color: text } } },
    },
  });
  DARK.addEventListener("change", () => recolour(chart));
  describeChart(canvas, curves);
  return chart;
}

// Add one logged step to a run's chart (the live stream's rows).
export function addPoint(chart, row) {
  chart.data.datasets[0].data.push({ x: row.step, y: row.loss });
  chart.update("none");
}

// Say in words what the chart shows, for screen readers.
export function describeChart(canvas, curves) {
  const said = curves.map((c) => (c.step.length
    ? `${c.label}: loss ${num(c.loss[0], 3)} at step ${c.step[0]} to ${num(c.loss.at(-1), 3)} at step ${c.step.at(-1)}`
    : `${c.label}: no steps logged yet`));
  canvas.setAttribute("aria-label", `Training loss per step. ${said.join(". ")}.`);
}
