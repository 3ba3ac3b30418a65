"use strict";
// The imagegen page: submit jobs through POST jobs, follow each with GET jobs/{id} (backing off), and browse GET images
// (newest first). The API key is kept in localStorage and sent as the x-api-key header, never in a URL. Jobs in flight
// (and the last finished ones) are kept in localStorage too, so they survive a reload. User text is always set as text.
(() => {
  const KEY_NAME = "imagegen.apiKey";
  const JOBS_NAME = "imagegen.jobs";
  const PAGE_SIZE = 24;
  // Polling: the first GET 1 s after submitting, then each interval 1.5 times the last, at most 10 s; a 429 waits at
  // least its Retry-After. At most one request in flight per job; none once it has ended.
  const FIRST_POLL_MS = 1000;
  const BACKOFF = 1.5;
  const MAX_POLL_MS = 10000;
  const RESUME_SPACING_MS = 250;
  // A 404 is waited out (a job is visible at once after POST jobs, but reads may lag) unless the job was submitted
  // longer ago than this: then its record is gone (expired after 15 days) and it is given up.
  const GIVE_UP_404_MS = 10 * 60 * 1000;
  // POST jobs is retried with the same Idempotency-Key on a network error, 429 or 5xx: at most this many times.
  const SUBMIT_RETRIES = 2;
  const KEEP_ENDED = 20; // finished jobs kept in localStorage (and in the list) besides every job in flight
  const ENDED = new Set(["succeeded", "failed", "lost"]);
  const STATUS_WORDS = {
    queued: "Queued: waiting for the worker",
    running: "Running: the model is making the image",
    succeeded: "Succeeded",
    failed: "Failed",
    lost: "Unknown to the API",
  };
  const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const $ = (id) => document.getElementById(id);
  const jobs = new Map(); // job id -> job (what is stored, plus the timer and the entry of this page)
  const removed = new Set(); // ids cleared from the list here (not written back by a merge)
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

  const networkError = () => ({ status: 0, body: {}, headers: new Headers() });

  async function api(path, options = {}) {
    const headers = { "x-api-key": storedKey(), ...(options.headers || {}) };
    const response = await fetch(base + path, { ...options, headers, cache: "no-store", referrerPolicy: "no-referrer" });
    let body = {};
    try { body = await response.json(); } catch { body = {}; }
    return { status: response.status, body, headers: response.headers };
  }

  // Retry-After in milliseconds (seconds or an HTTP date), or 0 when absent or unreadable.
  function retryAfterMs(headers) {
    const value = (headers.get("Retry-After") || "").trim();
    if (!value) return 0;
    if (/^\d+$/.test(value)) return Number(value) * 1000;
    const when = Date.parse(value);
    return Number.isNaN(when) ? 0 : Math.max(0, when - Date.now());
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

  function seconds(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    return total < 60 ? `${total} s` : `${Math.floor(total / 60)} min ${total % 60} s`;
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
    try { reply = await api(`images?${query}`); } catch { reply = networkError(); }
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

  // ---- jobs: storage ---------------------------------------------------------------------------------------------

  const isEnded = (job) => ENDED.has(job.status);
  const STORED_FIELDS = ["id", "prompt", "negativePrompt", "submittedAt", "status", "view", "endedAt", "problem"];

  function stored(job) {
    const record = {};
    for (const name of STORED_FIELDS) if (job[name] !== undefined) record[name] = job[name];
    return record;
  }

  function readStored() {
    let list;
    try { list = JSON.parse(localStorage.getItem(JOBS_NAME) || "[]"); } catch { list = []; }
    if (!Array.isArray(list)) return [];
    return list.filter((job) => job && typeof job.id === "string" && /^[0-9a-fA-F-]{36}$/.test(job.id)
      && typeof job.prompt === "string" && Number.isFinite(job.submittedAt) && typeof job.status === "string");
  }

  // Every job in flight and the newest KEEP_ENDED finished ones, merged with what another tab of this page stored.
  function saveJobs() {
    const merged = new Map(readStored().filter((job) => !removed.has(job.id)).map((job) => [job.id, job]));
    for (const job of jobs.values()) merged.set(job.id, stored(job));
    const newest = [...merged.values()].sort((a, b) => b.submittedAt - a.submittedAt);
    const ended = newest.filter(isEnded).slice(0, KEEP_ENDED);
    const keep = newest.filter((job) => !isEnded(job) || ended.includes(job));
    try { localStorage.setItem(JOBS_NAME, JSON.stringify(keep)); } catch { /* storage full or disabled: the list still works */ }
  }

  // ---- jobs: the list --------------------------------------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const errorWords = (error) => `${error.message || "no details"}${error.code ? ` (${error.code})` : ""}`;

  function duration(job) {
    const view = job.view || {};
    const made = Date.parse(view.created_at || "");
    const ended = Date.parse(view.updated_at || "");
    if (isEnded(job) && job.status !== "lost" && made && ended && ended >= made) return ended - made;
    return (isEnded(job) && job.endedAt ? job.endedAt : Date.now()) - job.submittedAt;
  }

  function elapsedText(job) {
    return isEnded(job) ? `took ${seconds(duration(job))}` : `${seconds(duration(job))} so far`;
  }

  // What an entry shows, besides the elapsed time: re-rendered only when this changes (the list is a live region).
  function describeJob(job) {
    const view = job.view || {};
    const lines = [];
    const attempts = Number(view.attempts) || 0;
    if (!isEnded(job) && view.last_error) {
      lines.push(["retry", `Retrying (attempts so far: ${attempts}); last error: ${errorWords(view.last_error)}.`]);
    } else if (!isEnded(job) && attempts > 1) {
      lines.push(["retry", `Attempts so far: ${attempts}.`]);
    } else if (isEnded(job) && attempts > 1) {
      lines.push(["retry", `After ${attempts} attempts.`]);
    }
    if (job.status === "succeeded" && view.model) {
      const count = Array.isArray(view.images) ? view.images.length : 0;
      lines.push(["made", `${count} image${count === 1 ? "" : "s"} by ${view.model}.`]);
    }
    if (job.status === "failed") lines.push(["job-error error", `The job failed: ${view.error ? errorWords(view.error) : "no details"}`]);
    if (job.status === "lost") lines.push(["job-error error", job.problem || "The API does not know this job."]);
    if (!isEnded(job) && job.problem) lines.push(["problem", job.problem]);
    return lines;
  }

  function jobEntry(job) {
    let entry = job.entry;
    if (!entry) {
      entry = element("li", "job");
      entry.dataset.jobId = job.id;
      job.entry = entry;
    }
    const view = job.view || {};
    const state = element("p", "state");
    const words = element("strong", "status", STATUS_WORDS[job.status] || job.status);
    const elapsed = element("span", "elapsed", elapsedText(job));
    elapsed.setAttribute("aria-live", "off"); // ticks every second: not announced (the status is)
    state.append(words, " · ", elapsed);
    const parts = [element("p", "job-prompt", job.prompt), state];
    for (const [className, text] of describeJob(job)) parts.push(element("p", className, text));
    if (job.status === "succeeded" && Array.isArray(view.images) && view.images.length) {
      const grid = element("div", "grid job-images");
      for (const image of view.images) {
        const shown = card({ ...image, prompt: job.prompt, negativePrompt: job.negativePrompt, model: view.model,
          source: view.source, created_at: view.updated_at });
        const size = image.width && image.height ? ` · ${image.width}×${image.height}` : "";
        shown.querySelector(".facts").textContent = `seed ${image.seed}${size}`; // the rest is said above
        shown.querySelector("img").addEventListener("error", () => {
          shown.querySelector(".facts").textContent = "The link to this image has expired; it is in the gallery.";
        });
        grid.append(shown);
      }
      parts.push(grid);
    }
    if (Array.isArray(view.failures) && view.failures.length) {
      const list = element("ul", "failures");
      for (const failure of view.failures) {
        list.append(element("li", "", `Image ${Number(failure.index) + 1} was not made: ${errorWords(failure)}`));
      }
      parts.push(list);
    }
    entry.replaceChildren(...parts);
    entry.dataset.status = job.status;
    job.shown = signature(job);
    return entry;
  }

  // What an entry shows (image URLs aside: they are presigned afresh on every GET).
  function signature(job) {
    const view = job.view || {};
    const images = Array.isArray(view.images) ? view.images.map((image) => image.key) : [];
    return JSON.stringify([job.status, describeJob(job), images, view.failures || []]);
  }

  function render(job) {
    if (job.entry && job.shown === signature(job)) return;
    const entry = jobEntry(job);
    if (!entry.isConnected) {
      const list = $("jobs");
      const after = [...list.children].find((other) => (jobs.get(other.dataset.jobId) || {}).submittedAt < job.submittedAt);
      list.insertBefore(entry, after || null);
    }
    showListState();
  }

  function showListState() {
    const all = [...jobs.values()];
    $("jobs-empty").hidden = all.length > 0;
    $("clear-jobs").hidden = !all.some(isEnded);
  }

  function tick() {
    for (const job of jobs.values()) {
      if (isEnded(job) || !job.entry) continue;
      const elapsed = job.entry.querySelector(".elapsed");
      if (elapsed) elapsed.textContent = elapsedText(job);
    }
  }

  function clearEnded() {
    for (const job of [...jobs.values()]) {
      if (!isEnded(job)) continue;
      jobs.delete(job.id);
      removed.add(job.id);
      if (job.entry) job.entry.remove();
    }
    saveJobs();
    showListState();
    $("prompt").focus();
  }

  // ---- jobs: polling ---------------------------------------------------------------------------------------------

  function schedule(job, delay) {
    clearTimeout(job.timer);
    job.timer = setTimeout(() => poll(job), delay);
  }

  function end(job, status) {
    job.status = status;
    job.endedAt = Date.now();
    clearTimeout(job.timer);
    job.timer = null;
  }

  async function poll(job) {
    job.timer = null;
    if (job.inFlight || isEnded(job) || !jobs.has(job.id)) return;
    if (!storedKey()) return; // resumed when a key is saved
    job.inFlight = true;
    let reply;
    try { reply = await api(`jobs/${encodeURIComponent(job.id)}`); } catch { reply = networkError(); }
    job.inFlight = false;
    let wait = job.interval;
    job.interval = Math.min(MAX_POLL_MS, job.interval * BACKOFF);
    const again = () => `checking again in ${Math.round(wait / 1000)} s`;
    if (reply.status === 200 && reply.body && typeof reply.body.status === "string") {
      const view = reply.body;
      job.view = view;
      job.problem = "";
      if (ENDED.has(view.status)) {
        end(job, view.status);
        if (view.status === "succeeded") loadGallery(false);
      } else {
        job.status = view.status;
      }
    } else if (reply.status === 404) {
      if (Date.now() - job.submittedAt > GIVE_UP_404_MS) {
        end(job, "lost");
        job.problem = "The API does not know this job (any more: records are kept for 15 days).";
      } else {
        job.problem = `The API does not show this job yet; ${again()}.`;
      }
    } else if (reply.status === 400) {
      end(job, "lost");
      job.problem = describe(reply.status, reply.body, reply.headers);
    } else {
      if (reply.status === 429) wait = Math.max(wait, retryAfterMs(reply.headers));
      const reason = reply.status === 429 ? "too many requests right now"
        : reply.status === 0 ? "the API could not be reached"
          : reply.status === 403 ? "the API key was refused (Change API key)"
            : `the API answered ${reply.status}`;
      job.problem = `Could not check the status: ${reason}; ${again()}.`;
    }
    saveJobs();
    render(job);
    if (!isEnded(job)) schedule(job, wait);
  }

  // Starts polling a job in flight that is not polled yet: 1 s after its submission; after a reload at once (``delay``),
  // then at the interval its age has reached on the same schedule (1 s, 1.5 s, 2.25 s, ... sum to about 2x the last).
  function resume(job, fresh, delay = 0) {
    if (isEnded(job) || job.timer || job.inFlight) return;
    if (fresh) {
      job.interval = FIRST_POLL_MS * BACKOFF;
      schedule(job, FIRST_POLL_MS);
    } else {
      const age = Math.max(0, Date.now() - job.submittedAt);
      job.interval = Math.min(MAX_POLL_MS, Math.max(FIRST_POLL_MS, FIRST_POLL_MS + age / 2));
      schedule(job, delay);
    }
  }

  // After a reload (or a new key): the newest job first, the others 250 ms apart (many jobs in flight must not burst
  // past the usage plan's 5 requests a second).
  function resumeAll() {
    const waiting = [...jobs.values()].filter((job) => !isEnded(job)).sort((a, b) => b.submittedAt - a.submittedAt);
    waiting.forEach((job, index) => resume(job, false, index * RESUME_SPACING_MS));
  }

  // ---- jobs: submitting ------------------------------------------------------------------------------------------

  function newIdempotencyKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

  // POST jobs; a network error, 429 or 5xx is retried with the same Idempotency-Key (never a second job).
  async function sendJob(body) {
    const headers = { "Content-Type": "application/json", "Idempotency-Key": newIdempotencyKey() };
    for (let attempt = 0; ; attempt += 1) {
      let reply;
      try { reply = await api("jobs", { method: "POST", headers, body: JSON.stringify(body) }); } catch { reply = networkError(); }
      const transient = reply.status === 0 || reply.status === 429 || reply.status >= 500;
      const wait = Math.max(FIRST_POLL_MS * 2 ** attempt, retryAfterMs(reply.headers));
      if (!transient || attempt >= SUBMIT_RETRIES || wait > MAX_POLL_MS) return reply;
      $("progress").textContent = `Sending… (${describe(reply.status, reply.body, reply.headers)} Retrying in ${Math.round(wait / 1000)} s.)`;
      await pause(wait);
    }
  }

  async function submit(event) {
    event.preventDefault();
    if (!storedKey()) { askForKey(); return; }
    showError("");
    const request = payload(event.target);
    const submittedAt = Date.now();
    $("progress").textContent = "Sending…";
    const reply = await sendJob(request);
    if (reply.status !== 202 || !reply.body || typeof reply.body.job_id !== "string") {
      $("progress").textContent = "";
      showError(describe(reply.status, reply.body, reply.headers));
      return;
    }
    const id = reply.body.job_id;
    $("progress").textContent = "Job submitted (see Jobs). You can submit another.";
    if (jobs.has(id)) return;
    const job = { id, prompt: request.prompt.trim(), negativePrompt: request.negativePrompt || null, submittedAt,
      status: reply.body.status || "queued", view: null };
    jobs.set(id, job);
    saveJobs();
    render(job);
    resume(job, true);
  }

  function restoreJobs() {
    for (const record of readStored()) {
      const job = { ...record };
      jobs.set(job.id, job);
      render(job);
    }
    showListState();
  }

  $("change-key").addEventListener("click", askForKey);
  $("cancel-key").addEventListener("click", () => $("key-dialog").close());
  $("key-form").addEventListener("submit", () => {
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_NAME, key);
    showKeyState();
    loadGallery(false);
    resumeAll();
  });
  $("generate-form").addEventListener("submit", submit);
  $("load-more").addEventListener("click", () => loadGallery(true));
  $("clear-jobs").addEventListener("click", clearEnded);
  $("reuse-prompt").addEventListener("click", () => reuse(false));
  $("reuse-seed").addEventListener("click", () => reuse(true));
  $("close-detail").addEventListener("click", () => $("detail").close());

  showKeyState();
  restoreJobs();
  setInterval(tick, 1000);
  if (storedKey()) { loadGallery(false); resumeAll(); } else askForKey();
})();
