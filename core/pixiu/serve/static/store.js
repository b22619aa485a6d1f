// The chats kept in this browser (localStorage): each bound to one model, or in Compare to a list of models.
// A chat is {id, title, model, compare: [models] | null, system, messages: [...], turns: [...], updated}:
// `messages` for a plain chat ({role, content, model, finish, state}), `turns` for a compare chat
// ({question, answers: {model: {content, finish, state}}, vote}).

const KEY = "pixiu.chats", SETTINGS = "pixiu.settings";

export function loadChats() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || "null");
    if (saved && Array.isArray(saved.chats)) {
      for (const chat of saved.chats) {  // answers cut off by a reload or a closed tab
        const answers = [...chat.messages, ...chat.turns.flatMap((turn) => Object.values(turn.answers))];
        for (const answer of answers) {
          if (answer.state === "waiting" || answer.state === "streaming") answer.state = "stopped";
        }
      }
      return saved;
    }
  } catch { /* unreadable: start afresh */ }
  return { chats: [], current: null };
}

export function saveChats(state) {
  localStorage.setItem(KEY, JSON.stringify(state));
}

export function newChat(model, compare) {
  return {
    id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    title: "New chat", model, compare, system: "", messages: [], turns: [], updated: Date.now(),
  };
}

// Whether the chat has anything in it yet (an empty chat may be rebound to another model).
export function isEmpty(chat) {
  return chat.messages.length === 0 && chat.turns.length === 0;
}

// The model (or compared models) a chat is bound to, as one key.
export function bindingOf(chat) {
  return chat.compare ? `compare:${chat.compare.join(",")}` : chat.model;
}

export function loadSettings(defaults) {
  try {
    return { ...defaults, ...JSON.parse(localStorage.getItem(SETTINGS) || "{}") };
  } catch {
    return { ...defaults };
  }
}

export function saveSettings(settings) {
  localStorage.setItem(SETTINGS, JSON.stringify(settings));
}

// Start a download of `data` as an indented JSON file.
export function downloadJson(data, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
