// The pixiu chat page: pick a domain, talk to it through the OpenAI-compatible API, answers streamed.
// Model output is only ever set as text (textContent/append), never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const picker = $("model"), log = $("log"), errorBox = $("error"), form = $("composer");
const input = $("input"), sendButton = $("send"), stopButton = $("stop");
const messages = [];  // the whole conversation, sent with every request
let running = null;   // the AbortController of the answer being streamed

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function describe(error) {
  // fetch rejects with a TypeError when the server cannot be reached at all
  return error instanceof TypeError ? `Network error: the server could not be reached (${error.message}).` : error.message;
}

async function httpError(response) {
  let detail = response.statusText;
  try {
    detail = (await response.json()).error.message || detail;
  } catch { /* not an OpenAI error body: keep the status text */ }
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    return new Error(`The server is busy (429): ${detail}. Try again${wait ? ` in ${wait} s` : " shortly"}.`);
  }
  return new Error(`Error ${response.status}: ${detail}`);
}

async function loadModels() {
  try {
    const response = await fetch("v1/models");
    if (!response.ok) throw await httpError(response);
    // reward models score answers (POST /v1/score); they cannot chat
    const models = (await response.json()).data.filter((m) => m.kind !== "reward_model");
    const previous = picker.disabled ? null : picker.value;
    picker.replaceChildren(...models.map((m) => new Option(m.parent ? m.id : `${m.id} (no adapter)`, m.id)));
    const adapter = models.find((m) => m.parent);  // open on a domain, not on the plain base
    picker.value = models.some((m) => m.id === previous) ? previous : (adapter || models[0]).id;
    picker.disabled = false;
  } catch (error) {
    showError(`Could not list the models: ${describe(error)}`);
  }
}

function addMessage(role, text, model) {
  const item = document.createElement("div");
  item.className = `msg ${role}`;
  if (model) {
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = model;
    item.append(who);
  }
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  log.append(item);
  log.scrollTop = log.scrollHeight;
  return item;
}

// Append each streamed piece to `answer`; return the finish reason once [DONE] arrives.
async function readStream(response, answer) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();  // {stream: true} below keeps a character split across reads whole
  let buffer = "", finish = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("The connection closed before the answer was complete.");
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
      if (data === "[DONE]") return finish;
      if (!data) continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(`The server stopped the answer: ${chunk.error.message}`);
      const choice = (chunk.choices || [])[0];
      if (choice && choice.delta && choice.delta.content) {
        answer.append(choice.delta.content);
        log.scrollTop = log.scrollHeight;
      }
      if (choice && choice.finish_reason) finish = choice.finish_reason;
    }
  }
}

function setBusy(busy) {
  sendButton.hidden = busy;
  stopButton.hidden = !busy;
}

async function send(text) {
  const model = picker.value;
  showError("");
  messages.push({ role: "user", content: text });
  const question = addMessage("user", text);
  const reply = addMessage("assistant", "", model);
  const answer = reply.querySelector(".text");
  reply.dataset.state = "streaming";
  const controller = running = new AbortController();
  setBusy(true);
  let state = "done";
  try {
    const response = await fetch("v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, signal: controller.signal,
      body: JSON.stringify({ model, messages, stream: true }),
    });
    if (!response.ok) {
      if (response.status === 404) loadModels();  // the adapter may have been unloaded: refresh the picker
      throw await httpError(response);
    }
    const finish = await readStream(response, answer);
    if (finish) reply.dataset.finish = finish;
  } catch (error) {
    state = controller.signal.aborted ? "stopped" : "error";
    if (state === "error") showError(describe(error));
  }
  running = null;
  setBusy(false);
  if (!reply.isConnected) return;  // the conversation was cleared meanwhile
  reply.dataset.state = state;
  if (state === "done" || answer.textContent) {
    messages.push({ role: "assistant", content: answer.textContent });
  } else {  // nothing came back: take the question out again, so it can be edited and resent
    messages.pop();
    question.remove();
    reply.remove();
    if (!input.value) input.value = text;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || running || picker.disabled) return;
  input.value = "";
  send(text);
});
input.addEventListener("keydown", (event) => {
  // Enter also confirms a candidate in Chinese input methods: only send when no composition is open
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});
stopButton.addEventListener("click", () => running && running.abort());
$("clear").addEventListener("click", () => {
  if (running) running.abort();
  messages.length = 0;
  log.replaceChildren();
  showError("");
  input.focus();
});
loadModels();
