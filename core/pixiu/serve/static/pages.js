// Links to the pages plugins add (`register_web_pages`), listed by GET /v1/pages, in the page header.
async function showPageLinks() {
  const nav = document.getElementById("plugin-pages");
  let pages = [];
  try {
    const response = await fetch("v1/pages");
    if (response.ok) pages = (await response.json()).data;
  } catch { /* no list, no links: the chat works without them */ }
  for (const page of pages) {
    const link = document.createElement("a");
    link.href = page.url;
    link.textContent = page.title;
    link.lang = page.lang;
    nav.append(link);
  }
  nav.hidden = pages.length === 0;
}

showPageLinks();
