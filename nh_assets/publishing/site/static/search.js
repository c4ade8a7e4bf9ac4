// Full-text search over every day, in the browser, with the Pagefind index built at build time.
// Results are built with DOM calls and textContent only: an excerpt is parsed by DOMParser (which
// runs nothing) and only its text and <mark> highlights are copied, so no indexed text becomes markup.
const form = document.getElementById("search-form");
const input = document.getElementById("q");
const category = document.getElementById("category");
const status = document.getElementById("search-status");
const list = document.getElementById("search-results");
let pagefind;

async function engine() {
  if (!pagefind) {
    pagefind = await import("/pagefind/pagefind.js");
    await pagefind.options({ baseUrl: "/", excerptLength: 30 });
  }
  return pagefind;
}

function excerptNodes(excerpt) {
  const doc = new DOMParser().parseFromString(`<p>${excerpt}</p>`, "text/html");
  const out = [];
  for (const node of doc.body.firstChild.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) out.push(document.createTextNode(node.textContent));
    else if (node.nodeName === "MARK") {
      const mark = document.createElement("mark");
      mark.textContent = node.textContent;
      out.push(mark);
    } else out.push(document.createTextNode(node.textContent));
  }
  return out;
}

function card(data) {
  const li = document.createElement("li");
  li.className = "card day-card";
  const date = document.createElement("p");
  date.className = "date";
  date.textContent = data.meta.date || "";
  const h2 = document.createElement("h2");
  const a = document.createElement("a");
  a.href = data.url;
  a.textContent = data.meta.title || data.url;
  h2.append(a);
  const p = document.createElement("p");
  p.className = "summary";
  p.append(...excerptNodes(data.excerpt || ""));
  li.append(date, h2, p);
  return li;
}

async function run(query, cat) {
  list.replaceChildren();
  if (!query) { status.textContent = "Type a word to search every day."; return; }
  status.textContent = "Searching…";
  const pf = await engine();
  const filters = cat ? { category: cat } : {};
  const found = await pf.search(query, { filters });
  const shown = await Promise.all(found.results.slice(0, 20).map((r) => r.data()));
  list.replaceChildren(...shown.map(card));
  const n = found.results.length;
  status.textContent = n === 0 ? `No day mentions “${query}”.` : `${n === 1 ? "1 day mentions" : `${n} days mention`} “${query}”${n > 20 ? " (showing 20)" : ""}.`;
}

const params = new URLSearchParams(window.location.search);
input.value = params.get("q") || "";
category.value = params.get("category") || "";
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const url = new URL(window.location.href);
  url.searchParams.set("q", input.value.trim());
  if (category.value) url.searchParams.set("category", category.value); else url.searchParams.delete("category");
  history.replaceState(null, "", url);
  run(input.value.trim(), category.value).catch((err) => { status.textContent = `Search failed: ${err.message}`; });
});
run(input.value.trim(), category.value).catch((err) => { status.textContent = `Search failed: ${err.message}`; });
