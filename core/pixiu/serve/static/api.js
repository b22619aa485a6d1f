// Talking to pixiu's OpenAI-compatible API: list the chat models, stream one answer, save a voted pair.

// An HTTP error with the server's own message; `status` tells 404 (model gone) and 429 (queue full) apart.
export class HttpError extends Error {
  constructor(status, detail, retryAfter) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function httpError(response) {
  let detail = response.statusText;
  try {
    detail = (await response.json()).error.message || detail;
  } catch { /* not an OpenAI error body: keep the status text */ }
  return new HttpError(response.status, detail, response.headers.get("Retry-After"));
}

// The chat models (reward models only score, so they are left out).
export async function listModels() {
  const response = await fetch("v1/models");
  if (!response.ok) throw await httpError(response);
  return (await response.json()).data.filter((m) => m.kind !== "reward_model");
}

// Requests queued and being answered on the server, for the "waiting" note.
export async function serverLoad() {
  const response = await fetch("health");
  const health = await response.json();
  return { waiting: health.waiting, active: health.active };
}

// Stream one chat completion; `onText(piece)` gets each piece; resolves to the finish reason.
export async function streamChat(body, signal, onText) {
  const response = await fetch("v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json" }, signal,
    body: JSON.stringify({ ...body, stream: true }),
  });
  if (!response.ok) throw await httpError(response);
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
      if (choice && choice.delta && choice.delta.content) onText(choice.delta.content);
      if (choice && choice.finish_reason) finish = choice.finish_reason;
    }
  }
}

// Append a voted preference pair to the server's pairs file; resolves to the file (relative to PIXIU_HOME).
export async function savePair(pair) {
  const response = await fetch("v1/feedback/pairs", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(pair),
  });
  if (!response.ok) throw await httpError(response);
  return (await response.json()).file;
}

// A sentence for the user about what went wrong, and what to do.
export function describe(error, model) {
  if (error instanceof TypeError) return `Network error: the server could not be reached (${error.message}).`;
  if (!(error instanceof HttpError)) return error.message;
  if (error.status === 404) {
    return `Error 404: ${error.message}. This chat stays with ${model}; load it again on the server, or pick ` +
      "another model for a new chat.";
  }
  if (error.status === 429) {
    const wait = error.retryAfter ? ` in ${error.retryAfter} s` : " shortly";
    return `The server is busy (429): ${error.message}. Try again${wait}.`;
  }
  return `Error ${error.status}: ${error.message}`;
}
