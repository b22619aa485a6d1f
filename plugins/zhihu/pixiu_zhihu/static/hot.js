// Chat with Zhihu's hot list: pick a question, read the model's summary of its most up-voted answers (asked with
// the prompt training used), then keep chatting about it. Text is only ever set as text.
import { chat, explain, fillModels, pageApi } from "../../../static/page_kit.js";

const $ = (id) => document.getElementById(id);
const SAMPLING = { max_tokens: 128, temperature: 0.3 };
let conversation = [];  // the messages of the open question: the summary prompt, then the chat
let busy = false;

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function message(role, text) {
  const box = document.createElement("div");
  box.className = `msg ${role}`;
  const who = Object.assign(document.createElement("span"), { className: "who", textContent: role === "user" ? "你" : $("model").value });
  const body = Object.assign(document.createElement("div"), { className: "text", textContent: text });
  box.append(who, body);
  $("log").append(box);
  box.scrollIntoView({ block: "end" });
  return body;
}

// Ask the model to answer `conversation`; its answer is shown and kept.
async function answer() {
  const model = $("model").value;
  const body = message("assistant", "等待回答…");
  body.classList.add("waiting");
  busy = true;
  $("send").disabled = true;
  try {
    const reply = await chat(model, conversation, SAMPLING);
    body.textContent = reply.text;
    body.parentElement.dataset.state = "done";
    conversation.push({ role: "assistant", content: reply.text });
  } catch (error) {
    body.parentElement.remove();
    showError(explain(error, model));
    return false;
  } finally {
    body.classList.remove("waiting");
    busy = false;
    $("send").disabled = false;
  }
  return true;
}

function open(question, button) {
  for (const other of $("questions").querySelectorAll("button")) other.removeAttribute("aria-current");
  button.setAttribute("aria-current", "true");
  showError("");
  $("empty").hidden = true;
  $("question").hidden = false;
  $("title").textContent = question.title;
  $("excerpt").textContent = question.excerpt;
  $("answers").replaceChildren(...question.answers.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
  $("answers-box").hidden = question.answers.length === 0;
  $("log").replaceChildren();
  $("composer").hidden = false;
  if (question.messages) {
    conversation = question.messages.map((m) => ({ ...m }));
    answer();
  } else {  // a hot-list entry crawled without its answers: nothing to summarise, chat about the question
    conversation = [{ role: "system", content: `我们在讨论知乎问题：${question.title}` }];
    message("assistant", "这个问题没有抓取到回答（用 --arg follow_answers=1 抓取），可以直接聊。");
  }
}

async function showHotList() {
  const list = await pageApi("hot");
  $("source").textContent = list.source === "crawl" ? "今日热榜" : "热榜（示例数据，尚未抓取）";
  $("questions").replaceChildren(...list.questions.map((question) => {
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: question.title });
    if (question.heat) button.append(Object.assign(document.createElement("span"), { className: "heat", textContent: question.heat }));
    button.addEventListener("click", () => open(question, button));
    const item = document.createElement("li");
    item.append(button);
    return item;
  }));
}

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || busy) return;
  showError("");
  conversation.push({ role: "user", content: text });
  const shown = message("user", text).parentElement;
  $("input").value = "";
  if (!(await answer())) {  // nothing answered: take the question back, to send again
    conversation.pop();
    shown.remove();
    $("input").value = text;
  }
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
fillModels($("model"), "zhihu").catch((error) => showError(explain(error, "zhihu")));
showHotList().catch((error) => showError(explain(error, "zhihu")));
