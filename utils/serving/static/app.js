// The page of python -m utils.serve: no framework, no CDN; talks to /model and /predict.
"use strict";
const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

async function loadCard() {
  try {
    const card = await (await fetch("/model")).json();
    const f1 = card.test_scores && card.test_scores.global ? card.test_scores.global.micro_f1 : null;
    $("model-info").textContent = `Model ${card.name} (${card.kind}), trained on ${card.dataset}` +
      (f1 !== null ? `, test micro-F1 ${f1.toFixed(3)}` : "") +
      (card.split && card.split.fast ? " (FAST mode)" : "") + ` · version ${card.version}`;
    $("title-hint").textContent = card.text === "title+plot"
      ? "(optional: this model reads the title with the plot)"
      : "(optional: this model reads plots alone and ignores a title)";
  } catch (err) {
    $("model-info").textContent = "Could not read the model card.";
  }
}

function draw(result, thresholds) {
  const predicted = new Set(result.labels.map((l) => l.genre));
  const list = $("predicted");
  list.replaceChildren();
  for (const label of result.labels) {
    const li = document.createElement("li");
    li.textContent = `${label.genre} ${(100 * label.probability).toFixed(0)}%`;
    li.dataset.genre = label.genre;
    list.appendChild(li);
  }
  if (!result.labels.length) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = "no genre above its threshold";
    list.appendChild(li);
  }
  const chart = $("chart");
  chart.replaceChildren();
  const rows = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [genre, p] of rows) {
    const row = document.createElement("div");
    row.className = "bar-row" + (predicted.has(genre) ? " predicted" : "");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = genre;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    track.appendChild(bar);
    if (thresholds && genre in thresholds) {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = `${(100 * thresholds[genre]).toFixed(1)}%`;
      tick.title = `threshold ${thresholds[genre].toFixed(2)}`;
      track.appendChild(tick);
    }
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = p.toFixed(2);
    row.append(name, track, value);
    chart.appendChild(row);
  }
  $("result").hidden = false;
}

// The server's own answer (a prediction or its JSON error), or {response, body: null} when something
// in between answered instead (an HTML error page, a dropped request).
async function ask(send) {
  let response = null;
  try {
    response = await send();
    const body = await response.json();
    return { response, body: body && (body.model || body.request_id) ? body : null };
  } catch (err) {
    return { response, body: null };
  }
}

async function predict() {
  const text = $("plot").value;
  const title = $("title").value.trim();
  if (!text.trim()) { setStatus("Type a plot first.", true); return; }
  $("predict").disabled = true;
  setStatus("Predicting…", false);
  const start = performance.now();
  try {
    let { response, body } = await ask(() => fetch("/predict", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(title ? { text, title } : { text }),
    }));
    // A proxy that drops POST (Colab's port proxy) answers with a page of its own, or not at all:
    // ask again with GET /predict?text=...&title=..., which the server answers the same way.
    const withTitle = title ? "&" + new URLSearchParams({ title }) : "";
    if (!body) ({ response, body } = await ask(() => fetch("/predict?" + new URLSearchParams({ text }) + withTitle)));
    if (!body) { setStatus(`The server did not answer (HTTP ${response ? response.status : "error"}).`, true); return; }
    if (!response.ok) { setStatus(body.error || `Error ${response.status}`, true); return; }
    draw(body, body.thresholds);
    const timing = `${Math.round(performance.now() - start)} ms (model ${body.model_ms.toFixed(1)} ms)`;
    const note = body.note ? ` ${body.note}` : "";   // a plot-only model says that it ignored the title
    if (body.warning) setStatus(`${body.warning} (${timing})${note}`, true);
    else setStatus(`${timing}, ${Math.round(100 * body.known_words.share)}% of the words known to the model.${note}`,
                   false);
  } catch (err) {
    setStatus(`The server did not answer: ${err}`, true);
  } finally {
    $("predict").disabled = false;
  }
}

$("predict").addEventListener("click", predict);
$("plot").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) predict(); });
$("title").addEventListener("keydown", (e) => { if (e.key === "Enter") predict(); });
for (const button of document.querySelectorAll(".example")) {
  button.addEventListener("click", () => { $("plot").value = button.dataset.text; $("title").value = ""; predict(); });
}
loadCard();
// /#text=...&title=... fills the boxes and predicts at once: a link that shows a prediction. The fragment
// never reaches the server, so the plot stays out of every log; an old /?text=... link is rewritten to it.
const query = new URLSearchParams(window.location.search).get("text");
const fragment = new URLSearchParams(window.location.hash.slice(1));
const shared = fragment.get("text") || query;
if (query !== null) history.replaceState(null, "", "/#" + new URLSearchParams({ text: query }).toString());
if (shared) { $("plot").value = shared; $("title").value = fragment.get("title") || ""; predict(); }
