// The law case form: the facts go to the model in the prompt training used, and its answer comes back with the
// charges the law parser reads in it highlighted. Text is only ever set as text.
import { chat, explain, fillModels, pageApi } from "../../../static/page_kit.js";

const $ = (id) => document.getElementById(id);

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// `text` with each occurrence of a charge name wrapped in <mark>, built as nodes.
function highlighted(text, charges) {
  const names = charges.filter(Boolean).sort((a, b) => b.length - a.length);
  const nodes = [];
  let rest = text;
  while (rest) {
    let at = -1, name = "";
    for (const candidate of names) {
      const index = rest.indexOf(candidate);
      if (index >= 0 && (at < 0 || index < at)) [at, name] = [index, candidate];
    }
    if (at < 0) break;
    nodes.push(document.createTextNode(rest.slice(0, at)));
    const mark = document.createElement("mark");
    mark.textContent = name;
    nodes.push(mark);
    rest = rest.slice(at + name.length);
  }
  nodes.push(document.createTextNode(rest));
  return nodes;
}

function showAnswer(text, charges) {
  $("answer").replaceChildren(...highlighted(text, charges));
  const items = charges.map((name) => Object.assign(document.createElement("li"), { textContent: name }));
  if (!items.length) items.push(Object.assign(document.createElement("li"), { className: "none", textContent: "（未识别出罪名）" }));
  $("charges").replaceChildren(...items);
  $("result").hidden = false;
}

async function judge(event) {
  event.preventDefault();
  const model = $("model").value;
  showError("");
  $("submit").disabled = true;
  $("submit").textContent = "等待回答…";
  try {
    const messages = await pageApi("prompt", { fact: $("fact").value });
    const answer = await chat(model, messages, { max_tokens: Number($("max-tokens").value) || 64, temperature: 0 });
    const parsed = await pageApi("parse", { text: answer.text });
    showAnswer(answer.text, parsed.charges);
  } catch (error) {
    showError(explain(error, model));
  } finally {
    $("submit").disabled = false;
    $("submit").textContent = "判断罪名";
  }
}

$("case-form").addEventListener("submit", judge);
fillModels($("model"), "law").catch((error) => showError(explain(error, "law")));
