// Model output as Markdown: marked turns it into HTML, DOMPurify strips anything that could run (scripts, event
// handlers, javascript: links) and hands back DOM nodes, so no HTML string is ever assigned to the page.
/* global marked, DOMPurify */

const PURIFY = { RETURN_DOM_FRAGMENT: true, FORBID_TAGS: ["style", "form", "input", "button", "textarea"] };

// Replace the children of `target` with `text` rendered as sanitised Markdown; code blocks get a Copy button.
export function renderMarkdown(target, text) {
  const fragment = DOMPurify.sanitize(marked.parse(text, { gfm: true, breaks: true }), PURIFY);
  for (const link of fragment.querySelectorAll("a")) {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  for (const block of fragment.querySelectorAll("pre")) {
    const wrap = document.createElement("div");
    wrap.className = "code";
    block.replaceWith(wrap);
    wrap.append(copyButton(() => block.textContent, "Copy code"), block);
  }
  target.replaceChildren(fragment);
}

// A button that copies `text()` to the clipboard and says whether it worked.
export function copyButton(text, label = "Copy") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = label;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

// Mark `element` lang="zh" when `text` holds Han characters, so screen readers and fonts treat it as Chinese;
// otherwise it keeps the page's language.
export function markLanguage(element, text) {
  if (/[\u3400-\u9fff]/.test(text)) element.lang = "zh";
  else element.removeAttribute("lang");
}
