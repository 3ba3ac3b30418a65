"use strict";
// The imagegen page: make images through POST generate-image and browse GET images (newest first). The API key is
// kept in localStorage and sent as the x-api-key header, never in a URL. User text is always set as text.
(() => {
  const KEY_NAME = "imagegen.apiKey";
  const PAGE_SIZE = 24;
  const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const $ = (id) => document.getElementById(id);
  let nextCursor = null;
  let detailEntry = null;

  const storedKey = () => localStorage.getItem(KEY_NAME) || "";

  function showKeyState() {
    $("key-state").textContent = storedKey() ? "API key set." : "No API key yet.";
    $("change-key").textContent = storedKey() ? "Change API key" : "Set API key";
  }

  function askForKey() {
    $("api-key").value = storedKey();
    $("key-dialog").showModal();
    $("api-key").focus();
  }

  async function api(path, options = {}) {
    const headers = { "x-api-key": storedKey(), ...(options.headers || {}) };
    const response = await fetch(base + path, { ...options, headers, cache: "no-store", referrerPolicy: "no-referrer" });
    let body = {};
    try { body = await response.json(); } catch { body = {}; }
    return { status: response.status, body, headers: response.headers };
  }

  // Errors in words: what happened and what to do, from the status and the API's message.
  function describe(status, body, headers) {
    const message = body && body.message ? body.message : "";
    const requestId = body && body.request_id ? ` (request id ${body.request_id})` : "";
    if (status === 400) return `The request was rejected: ${message}`;
    if (status === 403) return "The API key was refused. Check the key (Change API key) and try again.";
    if (status === 429) {
      const retry = headers.get("Retry-After");
      return `Too many requests right now. ${retry ? `Try again in ${retry} seconds.` : "Try again shortly."}`;
    }
    if (status === 502) return `The image service upstream failed: ${message || "bad gateway"}${requestId}`;
    if (status === 503) return `No image model is available right now: ${message || "try again later"}${requestId}`;
    if (status === 504) return `The image model did not answer in time. Try again.${requestId}`;
    if (status === 0) return "The API could not be reached. Check the connection and try again.";
    return `Unexpected answer ${status}: ${message || "no details"}${requestId}`;
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  function facts(entry) {
    const size = entry.width && entry.height ? `${entry.width}×${entry.height}` : "";
    const when = entry.created_at ? new Date(entry.created_at).toLocaleString() : "";
    return [entry.model, `seed ${entry.seed}`, size, entry.source, when].filter(Boolean).join(" · ");
  }

  function card(entry) {
    const item = document.createElement("figure");
    item.className = "card";
    item.dataset.key = entry.key;
    const open = document.createElement("button");
    open.type = "button";
    open.setAttribute("aria-label", `Show full size: ${entry.prompt}`);
    const image = document.createElement("img");
    image.src = entry.url;
    image.alt = entry.prompt;
    image.loading = "lazy";
    open.append(image);
    open.addEventListener("click", () => showDetail(entry));
    const meta = document.createElement("figcaption");
    meta.className = "meta";
    const prompt = document.createElement("p");
    prompt.className = "prompt";
    prompt.textContent = entry.prompt;
    const line = document.createElement("p");
    line.className = "facts";
    line.textContent = facts(entry);
    meta.append(prompt, line);
    item.append(open, meta);
    return item;
  }

  function showDetail(entry) {
    detailEntry = entry;
    $("detail-image").src = entry.url;
    $("detail-image").alt = entry.prompt;
    const list = $("detail-meta");
    list.replaceChildren();
    const rows = [["Prompt", entry.prompt], ["Negative prompt", entry.negativePrompt], ["Model", entry.model],
      ["Seed", entry.seed], ["Size", entry.width && entry.height ? `${entry.width} × ${entry.height}` : ""],
      ["Source", entry.source], ["Created", entry.created_at], ["Key", entry.key]];
    for (const [label, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      const term = document.createElement("dt");
      term.textContent = label;
      const detail = document.createElement("dd");
      detail.textContent = String(value);
      list.append(term, detail);
    }
    $("detail-download").href = entry.download_url || entry.url;
    $("detail").showModal();
    $("close-detail").focus();
  }

  function reuse(withSeed) {
    if (!detailEntry) return;
    $("prompt").value = detailEntry.prompt;
    $("negative-prompt").value = detailEntry.negativePrompt || "";
    $("seed").value = withSeed && detailEntry.seed !== null ? String(detailEntry.seed) : "";
    $("detail").close();
    $("prompt").focus();
  }

  async function loadGallery(more) {
    if (!storedKey()) return;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (more && nextCursor) query.set("cursor", nextCursor);
    $("gallery-status").textContent = "Loading…";
    let reply;
    try { reply = await api(`images?${query}`); } catch { reply = { status: 0, body: {}, headers: new Headers() }; }
    if (reply.status !== 200) {
      $("gallery-status").textContent = describe(reply.status, reply.body, reply.headers);
      return;
    }
    if (!more) $("gallery").replaceChildren();
    for (const entry of reply.body.images) $("gallery").append(card(entry));
    nextCursor = reply.body.next_cursor;
    $("load-more").hidden = !nextCursor;
    const shown = $("gallery").children.length;
    $("gallery-status").textContent = shown ? `${shown} image${shown === 1 ? "" : "s"} shown.` : "No images yet.";
  }

  function payload(form) {
    const data = new FormData(form);
    const body = { prompt: String(data.get("prompt") || "") };
    const negative = String(data.get("negativePrompt") || "").trim();
    if (negative) body.negativePrompt = negative;
    const size = String(data.get("size") || "");
    if (size) [body.width, body.height] = size.split("x").map(Number);
    const seed = String(data.get("seed") || "").trim();
    if (seed) body.seed = Number(seed);
    body.numberOfImages = Number(data.get("numberOfImages") || 1);
    return body;
  }

  async function generate(event) {
    event.preventDefault();
    if (!storedKey()) { askForKey(); return; }
    showError("");
    const button = $("generate");
    button.disabled = true;
    const started = performance.now();
    const tick = () => { $("progress").textContent = `Generating… ${Math.floor((performance.now() - started) / 1000)} s`; };
    tick();
    const timer = setInterval(tick, 1000);
    let reply;
    try {
      reply = await api("generate-image", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload(event.target)),
      });
    } catch {
      reply = { status: 0, body: {}, headers: new Headers() };
    } finally {
      clearInterval(timer);
      button.disabled = false;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (reply.status !== 200) {
      $("progress").textContent = "";
      showError(describe(reply.status, reply.body, reply.headers));
      return;
    }
    $("progress").textContent = `Done in ${seconds} s by ${reply.body.model}.`;
    const request = payload(event.target);
    $("results").replaceChildren(...reply.body.images.map((image) => card({
      ...image, prompt: request.prompt.trim(), negativePrompt: request.negativePrompt, model: reply.body.model,
      source: "api", created_at: new Date().toISOString(),
    })));
    loadGallery(false);
  }

  $("change-key").addEventListener("click", askForKey);
  $("cancel-key").addEventListener("click", () => $("key-dialog").close());
  $("key-form").addEventListener("submit", () => {
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_NAME, key);
    showKeyState();
    loadGallery(false);
  });
  $("generate-form").addEventListener("submit", generate);
  $("load-more").addEventListener("click", () => loadGallery(true));
  $("reuse-prompt").addEventListener("click", () => reuse(false));
  $("reuse-seed").addEventListener("click", () => reuse(true));
  $("close-detail").addEventListener("click", () => $("detail").close());

  showKeyState();
  if (storedKey()) loadGallery(false); else askForKey();
})();
