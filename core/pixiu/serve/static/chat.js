// The pixiu chat page: chats bound to a model (or, in Compare, to several answering side by side), streamed
// answers rendered as sanitised Markdown, kept in this browser. Plain text is only ever set as text.
import { describe, listModels, savePair, serverLoad, streamChat } from "./api.js";
import { markLanguage } from "./markdown.js";
import * as store from "./store.js";
import { messageView, turnView } from "./views.js";

const $ = (id) => document.getElementById(id);
const picker = $("model"), log = $("log"), form = $("composer"), input = $("input");
const compareMode = $("compare-mode"), compareBox = $("compare-models"), chatList = $("chats");
const DEFAULTS = { temperature: 0.7, top_p: 0.95, max_tokens: 256 };
const CONTROLS = { temperature: $("temperature"), top_p: $("top-p"), max_tokens: $("max-tokens") };

const state = store.loadChats();
let models = [];           // the chat models the server lists
let running = [];          // AbortControllers of the answers being streamed
let editing = null;        // index of the user message being edited, in a plain chat
let retry = null;          // what the Retry button does after a 429
let busy = false;          // whether a question is being answered

const current = () => state.chats.find((c) => c.id === state.current);
const save = () => store.saveChats(state);

// ---- errors, busy state ----------------------------------------------------------------------------

function showError(text, again = null) {
  $("error-text").textContent = text;
  $("error").hidden = !text;
  retry = again;
  $("retry").hidden = !again;
}

// Run `work` with Send swapped for Stop until it ends; nothing new is sent meanwhile.
async function busyWhile(work) {
  busy = true;
  $("send").hidden = true;
  $("stop").hidden = false;
  try {
    await work();
  } finally {
    busy = false;
    $("send").hidden = false;
    $("stop").hidden = true;
  }
}

// ---- settings ---------------------------------------------------------------------------------------

const settings = store.loadSettings(DEFAULTS);

function showSettings() {
  for (const [key, control] of Object.entries(CONTROLS)) control.value = settings[key];
}

function sampling() {
  const read = (key) => {
    const value = Number(CONTROLS[key].value);
    return CONTROLS[key].value !== "" && Number.isFinite(value) ? value : DEFAULTS[key];
  };
  return { temperature: read("temperature"), top_p: read("top_p"), max_tokens: Math.round(read("max_tokens")) };
}

// ---- the model picker and the chat list --------------------------------------------------------------

async function loadModels() {
  try {
    models = await listModels();
  } catch (error) {
    showError(`Could not list the models: ${describe(error)}`);
    return;
  }
  showPicker();
  if (!current()) {
    const adapter = models.find((m) => m.parent);  // open on a domain, not on the plain base
    selectChat(state.chats[0] || createChat((adapter || models[0]).id, null));
  } else {
    showChat();
  }
  picker.disabled = false;
}

// The picker lists the server's models, plus the current chat's model marked unavailable when it is gone,
// so the chat never silently moves to another model.
function showPicker() {
  const chat = current();
  const names = models.map((m) => m.id);
  const options = models.map((m) => new Option(m.parent ? m.id : `${m.id} (no adapter)`, m.id));
  if (chat && !names.includes(chat.model)) options.push(new Option(`${chat.model} (unavailable)`, chat.model));
  picker.replaceChildren(...options);
  if (chat) picker.value = chat.model;  // in Compare, the model a plain chat goes back to
  const chosen = new Set(chat && chat.compare ? chat.compare : [models[0] && models[0].id, picker.value]);
  $("compare-choices").replaceChildren(...names.map((name) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = name;
    box.checked = chosen.has(name);
    box.addEventListener("change", () => bind(picker.value, comparedModels()));
    label.append(box, ` ${name}`);
    return label;
  }));
}

function comparedModels() {
  return [...$("compare-choices").querySelectorAll("input:checked")].map((box) => box.value);
}

function createChat(model, compare) {
  const chat = store.newChat(model, compare);
  state.chats.unshift(chat);
  return chat;
}

function selectChat(chat) {
  state.current = chat.id;
  editing = null;
  save();
  showPicker();
  showChat();
}

// Bind the page to `model` (or to `compare` models): an empty current chat is rebound; otherwise the latest
// chat of that binding is selected, or a new one started. History never follows a switch of model.
function bind(model, compare) {
  const chat = current();
  const key = compare ? `compare:${compare.join(",")}` : model;
  if (chat && store.bindingOf(chat) === key) return;
  if (chat && store.isEmpty(chat) && !busy) {
    Object.assign(chat, { model, compare });
    selectChat(chat);
    return;
  }
  selectChat(state.chats.find((c) => store.bindingOf(c) === key && c !== chat) || createChat(model, compare));
}

function showChatList() {
  chatList.replaceChildren(...state.chats.map((chat) => {
    const item = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = chat.title;
    markLanguage(open, chat.title);
    open.title = chat.compare ? `Compare: ${chat.compare.join(", ")}` : chat.model;
    if (chat.id === state.current) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => !busy && selectChat(chat));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete";
    remove.textContent = "✕";
    remove.setAttribute("aria-label", `Delete chat “${chat.title}”`);
    remove.addEventListener("click", () => deleteChat(chat));
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = chat.compare ? chat.compare.join(" vs ") : chat.model;
    item.append(open, remove, who);
    return item;
  }));
}

function deleteChat(chat) {
  if (busy && chat.id === state.current) return;
  state.chats = state.chats.filter((c) => c !== chat);
  if (chat.id === state.current) {
    state.current = null;
    const next = state.chats[0] || createChat(chat.compare ? picker.value : chat.model, chat.compare);
    selectChat(next);
  } else {
    save();
    showChatList();
  }
}

// ---- drawing a chat ------------------------------------------------------------------------------------

function showChat() {
  const chat = current();
  compareMode.checked = Boolean(chat.compare);
  compareBox.hidden = !chat.compare;
  $("system").value = chat.system;
  $("editing").hidden = editing === null;
  log.replaceChildren(...(chat.compare ? chat.turns.map(compareView) : chat.messages.map(plainView)));
  $("empty").hidden = !store.isEmpty(chat);
  showChatList();
  log.scrollTop = log.scrollHeight;
}

// A plain chat's message: questions can be edited and resent, the last answer regenerated.
function plainView(message, index) {
  const last = index === current().messages.length - 1;
  return messageView(message, {
    edit: message.role === "user" ? () => startEdit(index) : null,
    regenerate: message.role === "assistant" && last ? regenerate : null,
  });
}

const compareView = (turn) => turnView(turn, current().compare, (winner) => vote(turn, winner));

// ---- asking ----------------------------------------------------------------------------------------------

function conversation(chat, upto) {
  const system = chat.system.trim() ? [{ role: "system", content: chat.system }] : [];
  return [...system, ...chat.messages.slice(0, upto).map(({ role, content }) => ({ role, content }))];
}

// Stream `model`'s answer to `messages` into `answer` (redrawn through `draw`); the error, if any, is returned.
async function answerInto(model, messages, answer, draw) {
  const controller = new AbortController();
  running.push(controller);
  answer.state = "waiting";
  const poll = setInterval(async () => {  // while nothing has come back, say how busy the server is
    if (answer.state !== "waiting") return;
    try {
      const load = await serverLoad();
      answer.note = `Waiting for the server… (${load.waiting} queued, ${load.active} being answered)`;
      draw();
    } catch { /* the note is a nicety */ }
  }, 1000);
  let error = null;
  try {
    answer.finish = await streamChat({ model, messages, ...sampling() }, controller.signal, (piece) => {
      answer.state = "streaming";
      answer.content += piece;
      draw();
    });
    answer.state = "done";
  } catch (caught) {
    answer.state = controller.signal.aborted ? "stopped" : "error";
    if (answer.state === "error") error = caught;
  }
  clearInterval(poll);
  delete answer.note;
  running = running.filter((c) => c !== controller);
  draw();
  return error;
}

// Redraw one element at most once per frame while pieces stream in.
function redrawer(render) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      render();
    });
  };
}

async function ask(chat, text) {
  if (chat.compare) return askAll(chat, text);
  const kept = chat.messages.slice();  // put back when the question gets no answer at all
  const edited = editing;
  if (edited !== null) chat.messages.splice(edited);
  editing = null;
  if (chat.messages.length === 0) chat.title = text.slice(0, 40);
  chat.messages.push({ role: "user", content: text });
  const error = await answer(chat);
  if (chat.messages.at(-1).role === "assistant") return;
  chat.messages = kept;
  if (!input.value) input.value = text;
  if (edited !== null && current() === chat) editing = edited;  // Send again still replaces that question
  finish(chat, error, () => resend(text));
}

// Answer the chat's last question; an answer that failed (or was stopped) before anything came back is taken
// out again. Resolves to the error, if any.
async function answer(chat) {
  const reply = { role: "assistant", content: "", model: chat.model, state: "waiting" };
  chat.messages.push(reply);
  showChat();
  save();
  const error = await answerInto(chat.model, conversation(chat, -1), reply, redrawer(() => {
    if (current() === chat && chat.messages.at(-1) === reply) {
      log.lastElementChild.replaceWith(plainView(reply, chat.messages.length - 1));
    }
  }));
  if (reply.state !== "done" && !reply.content) chat.messages.pop();
  else finish(chat, error, null);
  return error;
}

// Save and redraw `chat` after an answer; show `error` in place (with Retry doing `again` after a 429).
function finish(chat, error, again) {
  chat.updated = Date.now();
  save();
  if (current() === chat) showChat();
  if (!error) return;
  showError(describe(error, chat.model), error.status === 429 ? again : null);
  if (error.status === 404) loadModels();  // the picker then marks the model unavailable, and stays on it
}

function resend(text) {
  if (busy) return;
  input.value = "";
  send(text);
}

async function askAll(chat, text) {
  if (chat.compare.length < 2) {
    input.value = text;
    showError("Tick two or more models to compare.");
    return;
  }
  if (chat.turns.length === 0) chat.title = text.slice(0, 40);
  const turn = { question: text, answers: {}, vote: null, sampling: sampling() };
  for (const model of chat.compare) turn.answers[model] = { content: "", state: "waiting" };
  chat.turns.push(turn);
  showChat();
  save();
  const prompt = [...conversation(chat, 0), { role: "user", content: text }];  // each question asked afresh
  const redraw = redrawer(() => {
    if (current() === chat && chat.turns.at(-1) === turn) log.lastElementChild.replaceWith(compareView(turn));
  });
  const errors = await Promise.all(chat.compare.map((model) => answerInto(model, prompt, turn.answers[model], redraw)));
  turn.prompt = prompt;
  const nothing = Object.values(turn.answers).every((a) => a.state !== "done" && !a.content);
  if (nothing) {  // no model said anything: take the question back, as a plain chat does
    chat.turns.pop();
    if (!input.value) input.value = text;
  }
  chat.updated = Date.now();
  save();
  if (current() === chat) showChat();
  const failed = new Map();  // one line per distinct error, naming the models it hit
  chat.compare.forEach((model, i) => {
    if (!errors[i]) return;
    const line = describe(errors[i], model);
    failed.set(line, [...(failed.get(line) || []), model]);
  });
  const busyServer = errors.some((e) => e && e.status === 429);
  showError([...failed].map(([line, names]) => `${names.join(", ")}: ${line}`).join(" · "),
    nothing && busyServer ? () => resend(text) : null);
}

async function vote(turn, winner) {
  const chat = current();
  if (turn.vote || turn.voting) return;  // one vote per question, even on a double click
  if (winner === null) {
    turn.vote = { winner: null, note: "Tie: a tie teaches no preference, so no pair was written." };
  } else {
    turn.voting = true;
    const chosen = turn.answers[winner].content;
    const losers = chat.compare.filter((m) => m !== winner && turn.answers[m].state === "done" &&
      turn.answers[m].content.trim() && turn.answers[m].content.trim() !== chosen.trim());
    try {
      let file = "";
      for (const loser of losers) {
        file = await savePair({
          prompt: turn.prompt, chosen, rejected: turn.answers[loser].content,
          models: { chosen: winner, rejected: loser }, sampling: turn.sampling,
        });
      }
      turn.vote = {
        winner,
        note: losers.length ? `${winner} preferred over ${losers.join(", ")}: saved to ${file} on the server.` :
          "The answers are the same text, so no pair was written.",
      };
    } catch (error) {
      showError(`The vote was not saved: ${describe(error, winner)}`);
      return;
    } finally {
      delete turn.voting;
    }
  }
  save();
  showChat();
}

function startEdit(index) {
  if (busy) return;
  editing = index;
  input.value = current().messages[index].content;
  $("editing").hidden = false;
  input.focus();
}

function cancelEdit() {
  editing = null;
  $("editing").hidden = true;
  input.value = "";
}

async function regenerate() {
  const chat = current();
  if (busy || chat.messages.at(-1).role !== "assistant") return;
  const previous = chat.messages.pop();
  showError("");
  await busyWhile(async () => {
    const error = await answer(chat);
    if (chat.messages.at(-1).role === "assistant") return;
    chat.messages.push(previous);  // nothing came back: keep the answer there was
    finish(chat, error, regenerate);
  });
}

async function send(text) {
  const chat = current();
  showError("");
  await busyWhile(() => ask(chat, text));
}

// ---- wiring ---------------------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || busy || picker.disabled) return;
  input.value = "";
  send(text);
});
input.addEventListener("keydown", (event) => {
  // Enter also confirms a candidate in Chinese input methods: only send when no composition is open
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  } else if (event.key === "Escape" && editing !== null) {
    cancelEdit();
  }
});
picker.addEventListener("change", () => {  // picking one model (in Compare too) opens a plain chat of it
  showError("");
  bind(picker.value, null);
});
compareMode.addEventListener("change", () => {
  showError("");
  if (compareMode.checked) {
    compareBox.hidden = false;
    bind(picker.value, comparedModels());
  } else {
    bind(picker.value, null);
  }
});
$("stop").addEventListener("click", () => running.forEach((c) => c.abort()));
$("new-chat").addEventListener("click", () => {
  if (busy) return;
  const chat = current();
  selectChat(store.isEmpty(chat) ? chat : createChat(chat.model, chat.compare));
  input.focus();
});
$("clear").addEventListener("click", () => {
  running.forEach((c) => c.abort());
  Object.assign(current(), { messages: [], turns: [], title: "New chat" });
  editing = null;
  save();
  showChat();
  showError("");
  input.focus();
});
$("export").addEventListener("click", () => store.downloadJson(state.chats, "pixiu-chats.json"));
$("cancel-edit").addEventListener("click", cancelEdit);
$("retry").addEventListener("click", () => retry && retry());
$("system").addEventListener("input", () => {
  current().system = $("system").value;
  save();
});
for (const [key, control] of Object.entries(CONTROLS)) {
  control.addEventListener("change", () => {
    settings[key] = sampling()[key];
    store.saveSettings(settings);
  });
}
$("reset-settings").addEventListener("click", () => {
  Object.assign(settings, DEFAULTS);
  store.saveSettings(settings);
  showSettings();
});
showSettings();
loadModels();
