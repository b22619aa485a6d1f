// How the chat is drawn: messages (answers as sanitised Markdown, questions as text) and Compare's side-by-side
// answers with their vote, built as DOM nodes from the stored chat; what the buttons do is passed in.
import { copyButton, markLanguage, renderMarkdown } from "./markdown.js";

// A button showing `text` (read out as `label`, when given) that runs `action`.
function button(text, label, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = text;
  if (label) element.setAttribute("aria-label", label);
  element.addEventListener("click", action);
  return element;
}

// One message with Copy, plus Edit (a question) and Regenerate (an answer) when `actions` gives them.
export function messageView(message, actions = {}) {
  const item = document.createElement("div");
  item.className = `msg ${message.role}`;
  item.dataset.state = message.state || "done";
  if (message.finish) item.dataset.finish = message.finish;
  if (message.role === "assistant") {
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.model;
    item.append(who);
  }
  const body = document.createElement("div");
  body.className = "text";
  fill(body, message);
  item.append(body);
  const bar = document.createElement("div");
  bar.className = "actions";
  bar.append(copyButton(() => message.content));
  if (actions.edit) bar.append(button("Edit", "Edit and resend this question", actions.edit));
  if (actions.regenerate) bar.append(button("Regenerate", "Answer the last question again", actions.regenerate));
  item.append(bar);
  return item;
}

// Fill a message body: questions as plain text, answers as sanitised Markdown, plus the waiting note.
function fill(body, message) {
  markLanguage(body, message.content);
  if (message.role === "user") body.textContent = message.content;
  else renderMarkdown(body, message.content);
  if (message.state === "waiting") {
    const note = document.createElement("span");
    note.className = "waiting";
    note.textContent = message.note || "Waiting for the server…";
    body.append(note);
  }
}

// One question of a compare chat: the answers of `models` side by side (columns A, B, …), then the vote,
// which calls `onVote(model)` for the better answer or `onVote(null)` for a tie.
export function turnView(turn, models, onVote) {
  const item = document.createElement("section");
  item.className = "turn";
  const question = document.createElement("div");
  question.className = "msg user";
  markLanguage(question, turn.question);
  question.textContent = turn.question;
  const columns = document.createElement("div");
  columns.className = "columns";
  models.forEach((model, column) => {
    columns.append(messageView({ ...turn.answers[model], role: "assistant", model: `${letter(column)} · ${model}` }));
  });
  item.append(question, columns, voteView(turn, models, onVote));
  return item;
}

const letter = (column) => String.fromCharCode(65 + column);

function voteView(turn, models, onVote) {
  const box = document.createElement("div");
  box.className = "vote";
  if (turn.vote) {
    box.textContent = turn.vote.note;
    return box;
  }
  if (models.some((m) => turn.answers[m].state === "waiting" || turn.answers[m].state === "streaming")) return box;
  const answered = models.filter((m) => turn.answers[m].state === "done" && turn.answers[m].content.trim());
  if (answered.length < 2) {
    box.textContent = "Nothing to vote on: fewer than two answers came back with text.";
    return box;
  }
  const group = document.createElement("div");
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Which answer is better?");
  for (const model of answered) {
    const column = letter(models.indexOf(model));
    group.append(button(`${column} is better`, `${column} (${model}) is better`, () => onVote(model)));
  }
  group.append(button("Tie", "The answers are equally good", () => onVote(null)));
  box.append(group);
  return box;
}
