// The training page: start `pixiu domain train` on the server, watch its progress and output, cancel, resume.
// Every request carries the admin token, kept in sessionStorage (this tab only).

const RUN_PAGE = "runs?run=";  // the Runs page of one run, by its folder name
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
let selected = sessionStorage.getItem("pixiu.train.job");
let offset = 0;

async function api(method, path, body, headers = {}) {
  const response = await fetch(path, {
    method, body,
    headers: { Authorization: `Bearer ${sessionStorage.getItem("pixiu.token") || ""}`, ...headers },
  });
  let answer = null;
  try { answer = await response.json(); } catch { /* an empty or non-JSON body */ }
  if (!response.ok) {
    const message = answer?.error?.message || response.statusText;
    const error = new Error(response.status === 401 ? `${message} (enter the server's admin token above)` : message);
    error.status = response.status;
    throw error;
  }
  return answer;
}

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? error.message : "";
}

function option(value, text) {
  const item = document.createElement("option");
  item.value = value;
  item.textContent = text;
  return item;
}

// Fill a select with `items`, keeping its choice when that is still among them.
function fill(select, items) {
  const chosen = select.value;
  select.replaceChildren(...items);
  if (items.some((item) => item.value === chosen)) select.value = chosen;
}

async function loadOptions() {
  const options = await api("GET", "v1/train/options");
  const domain = $("domain");
  fill(domain, options.domains.map((d) => option(d.name, d.name)));
  domain.disabled = options.domains.length === 0;
  if (!options.domains.length) domain.append(option("", "no domain installed"));
  const describe = () => {
    const chosen = options.domains.find((d) => d.name === domain.value);
    $("domain-help").textContent = chosen ? `${chosen.description} (version ${chosen.version})` : "";
    $("domain-help").lang = /[\u4e00-\u9fff]/.test($("domain-help").textContent) ? "zh" : "";
  };
  domain.onchange = describe;
  describe();
  if (!$("base").value) $("base").value = options.base;
  const data = $("data");
  fill(data, [option("", "the domain's sample data"), ...options.data.map((f) => option(f, f))]);
  fill($("method"), [option("", "recipe (sft)"), ...options.methods.map((m) => option(m, m))]);
  const runs = options.resumable.map((name) => option(name, name));
  fill($("resume-run"), runs.length ? runs : [option("", "none")]);
  $("resume-chosen").disabled = !runs.length;
  $("upload").dataset.limit = options.upload_limit;
  $("start").disabled = domain.disabled;
}

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  if (file.size > Number($("upload").dataset.limit)) {
    showError(new Error(`${file.name} is larger than the server's upload limit of ${$("upload").dataset.limit} bytes`));
    return;
  }
  const saved = await api("PUT", `v1/train/uploads/${encodeURIComponent(file.name)}`, file,
    { "Content-Type": "application/octet-stream" });
  $("data").append(option(saved.file, saved.file));
  $("data").value = saved.file;
  showError(null);
}

function number(id) {
  const value = $(id).value.trim();
  return value === "" ? undefined : Number(value);
}

function settings() {
  const body = {
    domain: $("domain").value, base: $("base").value.trim() || undefined, data: $("data").value || undefined,
    method: $("method").value || undefined, max_steps: number("max-steps"), lr: number("lr"),
    lora_r: number("lora-r"), eval_records: number("eval-records"),
    settings: $("more-settings").value.split("\n").map((line) => line.trim()).filter(Boolean),
  };
  return JSON.stringify(body);
}

function watch(name) {
  selected = name;
  offset = 0;
  sessionStorage.setItem("pixiu.train.job", name);
  $("job-log").textContent = "";
}

function drawJobs(jobs) {
  $("no-jobs").hidden = jobs.length > 0;
  $("jobs").replaceChildren(...jobs.map((job) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${job.name} `;
    const state = document.createElement("span");
    state.className = "state";
    state.dataset.status = job.status;
    state.textContent = `${job.status}, step ${job.step}/${job.max_steps}`;
    button.append(state);
    if (job.name === selected) button.setAttribute("aria-current", "true");
    button.onclick = () => { watch(job.name); poll(); };
    item.append(button);
    return item;
  }));
}

function drawJob(job) {
  if (job.status !== "running" && $("job").dataset.status === "running") loadOptions();  // it may resume now
  $("job").hidden = false;
  $("job").dataset.status = job.status;
  $("job-title").textContent = `${job.name} (${job.domain})`;
  const loss = job.loss == null ? "" : `, loss ${job.loss.toFixed(4)}`;
  const speed = job.tokens_per_second == null ? "" : `, ${job.tokens_per_second} tokens/s`;
  const code = job.status === "failed" ? ` (exit code ${job.exit_code}; see the output below)` : "";
  $("job-status").textContent = `${job.status}: step ${job.step} of ${job.max_steps}${loss}${speed}${code}`;
  $("job-status").dataset.status = job.status;
  $("job-progress").max = Math.max(job.max_steps, 1);
  $("job-progress").value = job.step;
  $("cancel").hidden = job.status !== "running";
  $("resume").hidden = !job.resumable;
  $("run-link").hidden = job.status !== "finished";
  $("run-link").href = RUN_PAGE + encodeURIComponent(job.name);
  if (job.log) {
    const log = $("job-log");
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(job.log);
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  offset = job.offset;
}

async function poll() {
  try {
    const { data } = await api("GET", "v1/train/jobs");
    if (!selected && data.length) watch(data[0].name);
    drawJobs(data);
    if (selected && data.some((job) => job.name === selected)) {
      drawJob(await api("GET", `v1/train/jobs/${encodeURIComponent(selected)}?offset=${offset}`));
    }
  } catch (error) {
    showError(error);
  }
}

async function act(run) {
  try {
    await run();
    showError(null);
  } catch (error) {
    showError(error);
  }
  await poll();
}

async function useToken() {
  sessionStorage.setItem("pixiu.token", $("token").value);
  await act(loadOptions);
}

$("use-token").onclick = useToken;
$("token").onkeydown = (event) => { if (event.key === "Enter") useToken(); };
$("upload").onchange = () => act(upload);
$("train-form").onsubmit = (event) => {
  event.preventDefault();
  act(async () => {
    const job = await api("POST", "v1/train/jobs", settings(), { "Content-Type": "application/json" });
    watch(job.name);
  });
};
$("cancel").onclick = () => act(() => api("POST", `v1/train/jobs/${encodeURIComponent(selected)}/cancel`));
async function resume(name) {
  await api("POST", `v1/train/jobs/${encodeURIComponent(name)}/resume`);
  watch(name);  // a resumed run's output follows in the same log file
  await loadOptions();  // it is no longer offered for resuming
}

$("resume").onclick = () => act(() => resume(selected));
$("resume-chosen").onclick = () => act(() => resume($("resume-run").value));

if (sessionStorage.getItem("pixiu.token")) {
  $("token").value = sessionStorage.getItem("pixiu.token");
  act(loadOptions);
}
setInterval(() => { if (sessionStorage.getItem("pixiu.token")) poll(); }, POLL_MS);
