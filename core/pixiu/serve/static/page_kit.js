// For the pages plugins add (served at /plugins/NAME/): this server's API, whose root is two folders up, the
// page's own endpoints under api/, and a sentence for the user when a request fails.
import { HttpError } from "./api.js";

const ROOT = new URL("../../", location.href);

async function send(url, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(url, init);
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const error = await response.json();
      detail = (error.error && error.error.message) || JSON.stringify(error.detail) || detail;
    } catch { /* not JSON: keep the status text */ }
    throw new HttpError(response.status, detail, response.headers.get("Retry-After"));
  }
  return response.json();
}

// GET (no body) or POST `body` to the page's own endpoint `path` (under /plugins/NAME/api/).
export const pageApi = (path, body) => send(new URL(`api/${path}`, location.href), body);

// The names of the chat models the server serves (reward models only score).
export async function chatModels() {
  const list = await send(new URL("v1/models", ROOT));
  return list.data.filter((m) => m.kind !== "reward_model").map((m) => m.id);
}

// Fill `select` with the chat models, `preferred` chosen when it is served; resolves to the models.
export async function fillModels(select, preferred) {
  const names = await chatModels();
  select.replaceChildren(...names.map((name) => new Option(name, name, false, name === preferred)));
  select.disabled = false;
  return names;
}

// One whole chat answer of `model` to `messages` (not streamed); resolves to { text, finish }.
export async function chat(model, messages, sampling = {}) {
  const answer = await send(new URL("v1/chat/completions", ROOT), { model, messages, ...sampling });
  const choice = answer.choices[0];
  return { text: choice.message.content, finish: choice.finish_reason };
}

// A sentence for the user about what went wrong, and what to do.
export function explain(error, model) {
  if (error instanceof TypeError) return `Network error: the server could not be reached (${error.message}).`;
  if (!(error instanceof HttpError)) return error.message;
  if (error.status === 404) return `Error 404: ${error.message}. Load ${model} on the server, or pick another model.`;
  if (error.status === 429) return `The server is busy (429): ${error.message}. Try again shortly.`;
  return `Error ${error.status}: ${error.message}`;
}
