// The runs pages: every run (`runs`), one run with its loss curve, scores and predictions (`runs?run=ID`), and
// several runs compared (`runs?compare=A,B`). A training run's curve grows live from the server's log stream.
import {
  addPoint, describeChart, el, fillPairs, fillTable, link, lossChart, num, scoreSummary, scoreTable, statusBadge,
  variantsOf,
} from "./runs-views.js";

const $ = (id) => document.getElementById(id);
const PAGE = 10;             // predictions per page
const LIST_REFRESH_MS = 3000; // while a run trains, the list is read again this often
const params = new URLSearchParams(location.search);

async function getJson(url) {
  const response = await fetch(url);
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: the status says enough */ }
  if (!response.ok) {
    throw new Error(`Error ${response.status}: ${(body && body.error && body.error.message) || response.statusText}`);
  }
  return body;
}

function showError(error) {
  $("error").textContent = error instanceof TypeError
    ? `Network error: the server could not be reached (${error.message}).` : error.message;
  $("error").hidden = false;
}

const runUrl = (id) => `runs?run=${encodeURIComponent(id)}`;
const steps = (run) => (run.max_steps ? `${run.steps} / ${run.max_steps}` : String(run.steps));
const memory = (run) => (run.peak_memory_gib === null ? "–" : `${run.peak_memory_gib} GiB`);

// ---- the list ---------------------------------------------------------------------------------------

function listRow(run, selected) {
  const tr = el("tr");
  tr.dataset.id = run.id;
  tr.dataset.status = run.status;
  const box = el("input");
  box.type = "checkbox";
  box.checked = selected.has(run.id);
  box.setAttribute("aria-label", `Compare ${run.id}`);
  box.addEventListener("change", () => {
    if (box.checked) selected.add(run.id); else selected.delete(run.id);
    $("compare").disabled = selected.size < 2;
  });
  const name = el("th");
  name.scope = "row";
  name.append(link(runUrl(run.id), run.id));
  const check = el("td");
  check.append(box);
  tr.append(check, name, el("td", run.domain), el("td", run.base, "path"), el("td", run.method));
  const status = el("td");
  status.append(statusBadge(run.status));
  tr.append(status, el("td", steps(run)), el("td", num(run.tokens_per_second, 0)), el("td", memory(run)),
    el("td", scoreSummary(run.scores) || "–"), el("td", run.modified.replace("T", " ").replace("+00:00", " UTC")));
  return tr;
}

async function showList() {
  $("list-view").hidden = false;
  document.title = "pixiu runs";
  const selected = new Set();
  let runs = [];
  const draw = () => {
    const words = $("filter").value.trim().toLowerCase();
    const shown = runs.filter((r) => !words || [r.id, r.domain, r.base, r.method, r.status]
      .some((v) => v.toLowerCase().includes(words)));
    $("runs").tBodies[0].replaceChildren(...shown.map((run) => listRow(run, selected)));
    $("no-runs").hidden = runs.length > 0;
  };
  const load = async () => {
    runs = (await getJson("v1/runs")).data;
    draw();
    if (runs.some((r) => r.status === "training")) setTimeout(() => load().catch(showError), LIST_REFRESH_MS);
  };
  $("filter").addEventListener("input", draw);
  $("compare").addEventListener("click", () => {
    location.href = `runs?compare=${[...selected].map(encodeURIComponent).join(",")}`;
  });
  await load();
}

// ---- one run ------------------------------------------------------------------------------------------

function drawRun(run) {
  document.title = `${run.id} · pixiu runs`;
  $("run-title").textContent = run.id;
  $("run-status").replaceChildren(statusBadge(run.status));
  const report = $("run-report");
  report.hidden = !run.has_report;
  report.href = `v1/runs/${encodeURIComponent(run.id)}/report`;
  fillPairs($("run-trained"), run.trained, "What was trained");
  const shown = ["steps", "tokens/s", "peak memory"];  // given first, also while the run trains
  const cost = [["status", run.status], ["steps", steps(run)], ["tokens/s", num(run.tokens_per_second, 1)],
    ["peak memory", memory(run)], ...run.cost.filter(([label]) => !shown.includes(label)), ["folder", run.path]];
  fillPairs($("run-cost"), cost, "What it cost");
  const scores = $("run-scores");
  scores.replaceChildren();
  if (Object.keys(run.scores).length) {
    const held = run.records ? ` on ${run.records} held-out records` : "";
    scores.append(el("p", `Base vs adapter${held}:`, "note"), scoreTable(run.scores, "Held-out scores"));
  }
  if (Object.keys(run.general).length) {
    scores.append(el("p", "The forgetting probe (general questions):", "note"),
      scoreTable(run.general, "Forgetting probe scores"));
  }
  if (!scores.children.length) scores.append(el("p", "No scores yet: they are written when the run finishes.", "note"));
}

async function showPredictions(id, offset) {
  const page = await getJson(`v1/runs/${encodeURIComponent(id)}/predictions?offset=${offset}&limit=${PAGE}`);
  const answers = Object.fromEntries(page.rows.flatMap((row) => Object.keys(row.answers)).map((v) => [v, v]));
  const variants = variantsOf({ all: answers });
  fillTable($("predictions"), ["where", "prompt", "gold", ...variants], page.rows.map((row) =>
    [row.where, row.prompt, row.gold, ...variants.map((v) => row.answers[v] ?? "–")]), "Held-out predictions");
  $("page-note").textContent = page.total
    ? `${offset + 1}–${offset + page.rows.length} of ${page.total}` : "No held-out predictions (yet).";
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + page.rows.length >= page.total;
  return page;
}

// Follow a training run: each logged step extends the curve; when the run stops, the page is read again.
function follow(run, chart) {
  const live = $("run-live");
  live.textContent = "Live: following the training log…";
  const stream = new EventSource(`v1/runs/${encodeURIComponent(run.id)}/log`);
  const curve = { label: run.id, step: [], loss: [] };
  stream.onmessage = (event) => {
    const row = JSON.parse(event.data);
    curve.step.push(row.step);
    curve.loss.push(row.loss);
    addPoint(chart, row);
    describeChart(chart.canvas, [curve]);
    live.textContent = `Live: step ${row.step}${run.max_steps ? ` of ${run.max_steps}` : ""}, loss ${num(row.loss, 4)}`;
  };
  stream.addEventListener("reset", () => {
    curve.step.length = 0;
    curve.loss.length = 0;
    chart.data.datasets[0].data = [];
    chart.update("none");
  });
  const ended = async (status) => {
    drawRun(await getJson(`v1/runs/${encodeURIComponent(run.id)}`));  // its scores, once written
    await showPredictions(run.id, 0);
    live.textContent = `The run stopped: ${status}.`;
  };
  stream.addEventListener("end", (event) => {
    stream.close();
    ended(JSON.parse(event.data).status).catch(showError);
  });
  stream.onerror = () => { live.textContent = "Live: connection lost; the browser is reconnecting…"; };
}

async function showRun(id) {
  const run = await getJson(`v1/runs/${encodeURIComponent(id)}`);
  $("run-view").hidden = false;
  drawRun(run);
  const training = run.status === "training";
  // a training run's curve comes from the stream, which starts at its first row
  const chart = lossChart($("run-chart"), [{ label: run.id, ...(training ? { step: [], loss: [] } : run.curve) }]);
  let offset = 0;
  const turn = (by) => {
    offset = Math.max(0, offset + by);
    showPredictions(id, offset).catch(showError);
  };
  $("prev").addEventListener("click", () => turn(-PAGE));
  $("next").addEventListener("click", () => turn(PAGE));
  await showPredictions(id, offset);
  if (training) follow(run, chart);
}

// ---- several runs ----------------------------------------------------------------------------------------

async function showCompare(ids) {
  const compared = await getJson(`v1/runs/compare?runs=${ids.map(encodeURIComponent).join(",")}`);
  $("compare-view").hidden = false;
  const runs = compared.runs;
  document.title = `compare ${runs.map((r) => r.id).join(", ")} · pixiu runs`;
  fillTable($("compare-runs"), ["run", "domain", "base", "method", "status", "steps", "tokens/s", "peak memory"],
    runs.map((r) => [link(runUrl(r.id), r.id), r.domain, r.base, r.method, statusBadge(r.status), steps(r),
      num(r.tokens_per_second, 0), memory(r)]), "The runs compared");
  lossChart($("compare-chart"), compared.curves.map((c) => ({ label: c.id, step: c.step, loss: c.loss })));
  const everyScore = compared.scores.flatMap((s) => s.values.map((values, i) => [`${s.measure} ${i}`, values]));
  const variants = variantsOf(Object.fromEntries(everyScore));
  const head = ["measure", ...runs.flatMap((r) => variants.map((v) => `${r.id}: ${v}`))];
  fillTable($("compare-scores"), head, compared.scores.map((s) =>
    [s.measure, ...s.values.flatMap((values) => variants.map((v) => num(values[v], 4)))]), "Scores per run");
  $("compare-same").textContent = `${compared.config_same} settings are the same in every run; ` +
    `${compared.config_diff.length} differ:`;
  const show = (value) => {
    if (value === undefined || value === null) return "–";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  };
  fillTable($("compare-config"), ["setting", ...runs.map((r) => r.id)],
    compared.config_diff.map((d) => [d.key, ...d.values.map(show)]), "Settings that differ");
}

// ---- which page --------------------------------------------------------------------------------------------

async function main() {
  try {
    if (params.get("run")) await showRun(params.get("run"));
    else if (params.get("compare")) await showCompare(params.get("compare").split(",").filter(Boolean));
    else await showList();
  } catch (error) {
    showError(error);
  }
}

main();
