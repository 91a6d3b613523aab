// DFM web tool page: plain JavaScript over the JSON API (no build step).
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = { happy: "#f2c14e", sad: "#5b8def", surprise: "#c678dd", fear: "#56b6c2", anger: "#e06c75",
                 disgust: "#98c379", neutral: "#a0a7b4", null: "#d19a66" };
const LEVEL_VALUE = { low: 1 / 6, medium: 0.5, high: 5 / 6 };

const S = {
  vocab: null, project: null, analysis: null, edits: [], selected: -1, undo: [], redo: [],
  editsValid: true, renderJob: null, view: "preview", drag: null, previewBusy: false, previewAgain: false,
  serverOk: true, events: [], renderer: "warp", renderers: {}, speech: "auto",
};

// ------------------------------------------------------------------------------------------ helpers
async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(path, options);
  } catch (e) {
    serverGone();
    throw new Error("the DFM server is not answering");
  }
  if (!res.ok) {
    let detail = `${res.status} ${res.statusText}`;
    try { const body = await res.json(); if (body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (_) {}
    const err = new Error(detail); err.status = res.status; err.kind = res.headers.get("X-DFM-Error"); throw err;
  }
  return res;
}
const getJSON = async (path) => (await api(path)).json();
const sendJSON = async (path, method, body) => (await api(path, {
  method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();

function showBanner(text, kind = "error", force = false) {
  if (!S.serverOk && !force) return; // "server gone" stays until it answers again
  $("banner-text").textContent = text;
  $("banner").className = "banner" + (kind === "info" ? " info" : "");
  $("banner").hidden = false;
}
function hideBanner() { $("banner").hidden = true; }
$("banner-close").onclick = hideBanner;

function fmtTime(t) {
  if (!isFinite(t)) t = 0;
  const m = Math.floor(t / 60), s = t - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}
const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));
const round3 = (x) => Math.round(x * 1000) / 1000;
const duration = () => (S.project ? S.project.video.duration : 0);
const fps = () => (S.project ? S.project.video.fps : 25);
function frameAt(t) {
  const times = S.analysis ? S.analysis.times : null;
  if (!times) return Math.max(0, Math.floor(t * fps() + 1e-6));
  let lo = 0, hi = times.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (times[mid] <= t + 1e-6) lo = mid; else hi = mid - 1; }
  return lo;
}
function frameTime(i) {
  const times = S.analysis ? S.analysis.times : null;
  const n = times ? times.length : Math.round(duration() * fps());
  i = clamp(i, 0, Math.max(0, n - 1));
  return (times ? times[i] : i / fps()) + 0.25 / fps(); // inside the frame, safe from rounding
}
function minEditSeconds() {
  const frames = S.vocab ? S.vocab.minimum_edit_frames : 21;
  return (frames + 0.5) / fps();
}
function intensityNumber(e) {
  if (e.intensity == null) return e.label === "neutral" ? 0 : null;
  return typeof e.intensity === "string" ? LEVEL_VALUE[e.intensity] : e.intensity;
}
function editText(e) {
  const name = e.label || "AU";
  const inten = e.intensity == null ? "" : (typeof e.intensity === "string" ? ` ${e.intensity}` : ` ${e.intensity.toFixed(2)}`);
  return name + inten;
}

// -------------------------------------------------------------------------------- server liveness
function serverGone() {
  if (!S.serverOk) return;
  S.serverOk = false;
  $("server-state").className = "server gone";
  $("server-state").title = "server not answering";
  showBanner("The DFM server is not answering. Start it again with `dfm gui`; projects and saved edits are kept in its workspace.", "error", true);
}
async function healthCheck() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 4000);
  try {
    const r = await fetch("/api/health", { signal: ctl.signal, cache: "no-store" });
    if (!r.ok) throw new Error();
    if (!S.serverOk) {
      S.serverOk = true;
      $("server-state").className = "server ok";
      hideBanner();
      if (S.project) openProject(S.project.id);
    }
  } catch (_) { serverGone(); } finally { clearTimeout(timer); }
}
setInterval(healthCheck, 3000);

// ---------------------------------------------------------------------------------------- projects
async function refreshProjects(selectId) {
  const list = await getJSON("/api/projects");
  const sel = $("project-select");
  sel.innerHTML = '<option value="">Projects…</option>';
  for (const p of list.data.slice().reverse()) {
    const o = document.createElement("option");
    o.value = p.id;
    const st = p.analysis ? p.analysis.state : "";
    o.textContent = `${p.name} · ${p.video.duration.toFixed(1)} s${st && st !== "done" ? " · " + st : ""}${p.output ? " · reenacted" : ""}`;
    sel.appendChild(o);
  }
  if (selectId) sel.value = selectId;
}
$("project-select").onchange = (e) => { if (e.target.value) openProject(e.target.value); };
$("delete-project").onclick = async () => {
  if (!S.project || !confirm(`Delete the project "${S.project.name}" with its results?`)) return;
  try {
    await api(`/api/projects/${S.project.id}`, { method: "DELETE" });
    S.project = null; location.hash = ""; $("editor").hidden = true; $("empty").hidden = false;
    $("delete-project").disabled = true;
    refreshProjects();
  } catch (e) { showBanner(`Could not delete the project: ${e.message}`); }
};

function uploadWithProgress(url, file, label) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.open("POST", url);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) showBanner(`${label} ${Math.round(100 * e.loaded / e.total)}%`, "info"); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_) {}
      if (xhr.status >= 200 && xhr.status < 300) { hideBanner(); resolve(body); }
      else reject(new Error(body.detail || `${xhr.status} ${xhr.statusText}`));
    };
    xhr.onerror = () => { serverGone(); reject(new Error("the DFM server is not answering")); };
    xhr.send(form);
  });
}

async function uploadVideo(file) {
  if (!file) return;
  try {
    const p = await uploadWithProgress("/api/projects", file, `Uploading ${file.name}:`);
    await refreshProjects(p.id);
    openProject(p.id);
  } catch (e) { showBanner(e.message.startsWith(file.name) ? e.message : `Could not open ${file.name}: ${e.message}`); }
}
$("file-input").onchange = (e) => { uploadVideo(e.target.files[0]); e.target.value = ""; };
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) document.body.classList.remove("dragging"); });
document.addEventListener("drop", (e) => {
  e.preventDefault(); document.body.classList.remove("dragging");
  const f = e.dataTransfer.files[0];
  if (f) uploadVideo(f);
});

async function openProject(id) {
  let p;
  try { p = await getJSON(`/api/projects/${id}`); }
  catch (e) { showBanner(`Could not open the project: ${e.message}`); return; }
  closeEvents();
  S.project = p; S.analysis = null; S.undo = []; S.redo = []; S.selected = -1; S.renderJob = null;
  S.renderer = "warp"; S.renderers = {}; $("renderer-select").value = "warp"; showRenderers();
  S.speech = "auto"; $("speech-select").value = "auto";
  location.hash = `p=${p.id}`;
  document.title = `${p.name} — DFM`;
  $("project-select").value = p.id;
  $("delete-project").disabled = false;
  $("empty").hidden = true; $("editor").hidden = false;
  $("input-name").textContent = `${p.name} · ${p.video.width}×${p.video.height} · ${p.video.fps.toFixed(2)} fps`;
  showSubject(p); hideFaces();
  $("input-video").src = `/api/projects/${p.id}/video`;
  $("output-video").removeAttribute("src"); $("show-output").disabled = true; setView("preview");
  $("result-box").hidden = true; $("job-box").hidden = true;
  $("preview-image").removeAttribute("src");
  try { S.edits = fromDoc(await getJSON(`/api/projects/${p.id}/edits`)); } catch (_) { S.edits = []; }
  S.wave = null;
  getJSON(`/api/projects/${p.id}/waveform?buckets=${Math.max(100, Math.min(4000, Math.round(canvas.clientWidth || 800)))}`)
    .then((w) => { if (S.project && S.project.id === p.id) { S.wave = w; drawTimeline(); } }).catch(() => {});
  updateInspector(); updateHistory(); resizeTimeline();
  if (p.output) showResult(p.output);
  showLastRender(p);
  followAnalysis(p);
  loadPersons();
}

// ------------------------------------------------------------------------- which face is edited
function showSubject(p) {
  const chosen = p.subject && p.subject !== "largest";
  $("subject-note").textContent = chosen ? (p.subject.includes(":") ? "· the face you chose" : `· the ${p.subject} face`) : "";
  $("subject-note").title = chosen ? `subject: ${p.subject} (the CLI's --subject ${p.subject})` : "";
}
function hideFaces() { $("face-layer").hidden = true; $("face-layer").replaceChildren(); }
async function chooseFace() {
  if (!S.project) return;
  if (!$("face-layer").hidden) { hideFaces(); return; }
  vin.pause();
  const t = vin.currentTime, p = S.project;
  let r;
  try { r = await getJSON(`/api/projects/${p.id}/faces?t=${t.toFixed(3)}`); }
  catch (e) { showBanner(`Could not look for faces: ${e.message}`); return; }
  if (!r.faces.length) { showBanner(`No face found in the frame at ${fmtTime(t)}: move to a frame where the person is visible.`); return; }
  const layer = $("face-layer");
  layer.hidden = false;  // measured while shown: a hidden layer has no size
  const box = layer.getBoundingClientRect();
  const scale = Math.min(box.width / p.video.width, box.height / p.video.height);
  const ox = (box.width - scale * p.video.width) / 2, oy = (box.height - scale * p.video.height) / 2;
  const hint = document.createElement("div");
  hint.className = "face-hint"; hint.textContent = "Click the face to edit (Esc: cancel)";
  layer.replaceChildren(hint);
  r.faces.forEach((f, k) => {
    const b = document.createElement("button");
    b.className = "face-box"; b.title = `face ${k + 1}`;
    Object.assign(b.style, { left: `${ox + scale * f.x0}px`, top: `${oy + scale * f.y0}px`,
                             width: `${scale * (f.x1 - f.x0)}px`, height: `${scale * (f.y1 - f.y0)}px` });
    b.addEventListener("click", () => pickFace(t, (f.x0 + f.x1) / 2, (f.y0 + f.y1) / 2));
    layer.appendChild(b);
  });
}
async function pickFace(t, x, y) {
  hideFaces();
  let p;
  try {
    p = await sendJSON(`/api/projects/${S.project.id}/subject`, "PUT",
                       { subject: `${t.toFixed(3)}s:${Math.round(x)},${Math.round(y)}` });
  } catch (e) { showBanner(`Could not choose that face: ${e.message}`); return; }
  S.project = p; S.analysis = null; showSubject(p); drawTimeline();
  $("reenact").disabled = true;
  followAnalysis(p);
}
$("choose-face").addEventListener("click", chooseFace);

function followAnalysis(p) {
  const a = p.analysis;
  if (!a) { $("analysis-state").textContent = "not analysed"; return; }
  if (a.state === "done") { loadAnalysis(); return; }
  if (a.state === "failed" || a.state === "cancelled" || a.state === "interrupted") {
    analysisFailed(a); return;
  }
  followJob(a.job, (st) => {
    $("analysis-state").textContent = `Finding the face… ${Math.round(100 * st.progress)}% (${st.message})`;
    $("preview-wait").hidden = false; $("preview-wait").textContent = "analysing the video…";
    drawTimeline();
  }, (st) => {
    if (st.state === "done") loadAnalysis(); else analysisFailed(st);
    refreshProjects(p.id);
  });
}
function analysisFailed(st) {
  $("analysis-state").textContent = `analysis ${st.state}`;
  $("preview-wait").hidden = false; $("preview-wait").textContent = "no analysis";
  showBanner(st.state === "failed" ? `Analysis failed: ${st.message}` :
             `The analysis was ${st.state} (${st.message}). Open the video again to retry.`);
  $("reenact").disabled = true;
}

async function loadAnalysis() {
  try { S.analysis = await getJSON(`/api/projects/${S.project.id}/analysis`); }
  catch (e) { showBanner(`Could not load the analysis: ${e.message}`); return; }
  const valid = S.analysis.valid.filter(Boolean).length;
  $("analysis-state").textContent = `face found in ${valid} of ${S.analysis.frames} frames`;
  $("preview-wait").hidden = true;
  updateReenact(); drawTimeline(); refreshPreview(); loadCoverage(); loadRenderers();
  if (S.edits.length) syncEdits(0);
}

// -------------------------------------------------------------------------------------- renderer
// warp needs no training; warp+refine and neural need a model trained on this video: the server says
// which are ready, and for the others the one line with the command that trains them (shown in the banner).
async function loadRenderers() {
  const p = S.project;
  try {
    const r = await getJSON(`/api/projects/${p.id}/renderers`);
    if (S.project !== p) return;
    S.renderers = Object.fromEntries(r.data.map((x) => [x.name, x]));
  } catch (_) { S.renderers = {}; }
  showRenderers();
}
function showRenderers() {
  for (const o of $("renderer-select").options) {
    const st = S.renderers[o.value];
    o.textContent = o.value + (st && !st.trained ? " (not trained)" : "");
  }
}
function rendererRefused(message) {
  // the chosen renderer cannot run on this video: say why (and how to train it), go back to warp
  showBanner(message);
  S.renderer = "warp"; $("renderer-select").value = "warp";
  refreshPreview();
}
$("renderer-select").onchange = (e) => {
  const name = e.target.value, st = S.renderers[name];
  if (st && !st.trained) { rendererRefused(st.message); return; }
  S.renderer = name; hideBanner(); refreshPreview();
};

// ----------------------------------------------------------------------------------- lip motion
// auto: the server keeps the lip motion when the person talks near the edits (sound or a talking mouth)
const speechSetting = () => ({ auto: null, on: true, off: false })[S.speech];
$("speech-select").onchange = (e) => { S.speech = e.target.value; refreshPreview(); };

// ------------------------------------------------------------------------------------------- jobs
function closeEvents() { for (const es of S.events) es.close(); S.events = []; }
function followJob(jobId, onStatus, onEnd) {
  let ended = false;
  const finish = (st) => { if (!ended) { ended = true; onEnd(st); } };
  const es = new EventSource(`/api/jobs/${jobId}/events`);
  S.events.push(es);
  es.addEventListener("status", (ev) => {
    const st = JSON.parse(ev.data);
    onStatus(st);
    if (["done", "failed", "cancelled", "interrupted"].includes(st.state)) { es.close(); finish(st); }
  });
  es.onerror = () => {
    es.close();
    if (ended) return;
    // the stream broke (server restarted or gone): poll until the job ends or the server answers again
    const poll = async () => {
      try {
        const st = await getJSON(`/api/jobs/${jobId}`);
        onStatus(st);
        if (["done", "failed", "cancelled", "interrupted"].includes(st.state)) finish(st); else setTimeout(poll, 1000);
      } catch (_) { setTimeout(poll, 2000); }
    };
    setTimeout(poll, 500);
  };
}

$("reenact").onclick = async () => {
  if (!S.project) return;
  try {
    await flushEdits();
    const { job } = await sendJSON(`/api/projects/${S.project.id}/render`, "POST",
                                   { seed: 0, renderer: S.renderer, preserve_speech: speechSetting() });
    followRender(job);
  } catch (e) {
    if (e.kind === "renderer") rendererRefused(e.message);
    else showBanner(`Could not start reenacting: ${e.message}`);
  }
};
function followRender(job) {
  S.renderJob = job;
  $("job-box").hidden = false; $("job-cancel").disabled = false; $("reenact").disabled = true;
  $("job-bar").style.width = "0%"; $("job-text").textContent = "queued";
  followJob(job, (st) => {
    $("job-bar").style.width = `${Math.round(100 * st.progress)}%`;
    $("job-text").textContent = st.state === "queued" ? "waiting for the previous job…" : `${Math.round(100 * st.progress)}% · ${st.message}`;
  }, (st) => {
    S.renderJob = null; $("job-cancel").disabled = true; updateReenact();
    if (st.state === "done") { $("job-box").hidden = true; showResult(job, st); refreshProjects(S.project.id); }
    else if (st.state === "failed") { $("job-text").textContent = "failed"; showBanner(`Reenacting failed: ${st.message}`); }
    else $("job-text").textContent = st.state === "cancelled" ? "cancelled — the previous result (if any) is kept" : `${st.state}: ${st.message}`;
  });
}
$("job-cancel").onclick = async () => {
  if (!S.renderJob) return;
  $("job-cancel").disabled = true; $("job-text").textContent = "cancelling…";
  try { await api(`/api/jobs/${S.renderJob}`, { method: "DELETE" }); } catch (e) { showBanner(`Could not cancel: ${e.message}`); }
};

async function showLastRender(p) {
  // a render that is still running (another tab, or before a reload) is followed again; one that was
  // cut off or failed says so
  const last = p.renders[p.renders.length - 1];
  if (!last || last === p.output) return;
  let st;
  try { st = await getJSON(`/api/jobs/${last}`); } catch (_) { return; }
  if (st.state === "queued" || st.state === "running") { followRender(last); return; }
  if (st.state !== "done") {
    $("job-box").hidden = false; $("job-cancel").disabled = true;
    $("job-bar").style.width = `${Math.round(100 * st.progress)}%`;
    $("job-text").textContent = `last reenact ${st.state}: ${st.message}`;
  }
}

async function showResult(jobId, status) {
  const base = `/api/projects/${S.project.id}`;
  const out = $("output-video");
  out.src = `${base}/output?job=${jobId}`;
  $("download-output").href = `${base}/output?job=${jobId}`;
  $("download-output").setAttribute("download", S.project.name.replace(/\.[^.]+$/, "") + ".dfm.mp4");
  $("download-sidecar").href = `${base}/output/sidecar?job=${jobId}`;
  $("download-sidecar").setAttribute("download", S.project.name.replace(/\.[^.]+$/, "") + ".dfm.json");
  $("result-box").hidden = false; $("show-output").disabled = false;
  let st = status;
  if (!st) { try { st = await getJSON(`/api/jobs/${jobId}`); } catch (_) {} }
  if (st && st.result) {
    const r = st.result;
    const box = $("result-text");
    box.textContent = `${r.edited_frames} of ${r.frames} frames edited` +
      (r.preserve_speech === undefined ? "" : r.preserve_speech ? " · lip motion kept" : " · lip motion not kept");
    if ((r.warnings || []).length) {
      const ul = document.createElement("ul");
      for (const w of r.warnings) { const li = document.createElement("li"); li.textContent = w; ul.appendChild(li); }
      box.appendChild(ul);
    }
  }
  setView("output");
}

// ------------------------------------------------------------------------------ playback and sync
const vin = $("input-video"), vout = $("output-video");
function setView(v) {
  S.view = v;
  $("show-preview").classList.toggle("active", v === "preview");
  $("show-output").classList.toggle("active", v === "output");
  vout.hidden = v !== "output";
  $("preview-image").hidden = v !== "preview";
  $("preview-note").textContent = v === "output" ? "plays in sync with the input" : "";
  if (v === "output") { syncOutput(true); if (!vin.paused) vout.play().catch(() => {}); }
  else { vout.pause(); refreshPreview(); }
}
$("show-preview").onclick = () => setView("preview");
$("show-output").onclick = () => setView("output");
function syncOutput(force) {
  // the input is the clock: a paused or seeked output jumps to it; a playing one is nudged by its rate
  if (S.view !== "output" || !vout.getAttribute("src")) return;
  const drift = vout.currentTime - vin.currentTime;
  if (force || vin.paused || Math.abs(drift) > 0.15) {
    if (Math.abs(drift) > 1e-3) vout.currentTime = vin.currentTime;
    vout.playbackRate = 1;
  } else vout.playbackRate = clamp(1 - 2 * drift, 0.9, 1.1);
  if (!vin.paused && vout.paused) vout.play().catch(() => {});
}
function togglePlay() { if (vin.paused) vin.play().catch(() => {}); else vin.pause(); }
$("play").onclick = togglePlay;
vin.addEventListener("play", () => { $("play").textContent = "❚❚"; if (S.view === "output") { syncOutput(true); vout.play().catch(() => {}); } });
vin.addEventListener("playing", () => syncOutput(true));
vin.addEventListener("pause", () => { $("play").textContent = "▶"; vout.pause(); syncOutput(true); refreshPreview(); });
vin.addEventListener("seeked", () => { syncOutput(true); refreshPreview(); });
vin.addEventListener("loadedmetadata", () => drawTimeline());
vin.addEventListener("error", () => showBanner("The browser cannot play this video's format; the timeline, preview and reenact still work, and the result is an H.264 MP4."));
vout.addEventListener("loadedmetadata", () => syncOutput(true));  // a result just loaded starts at the playhead
vout.addEventListener("error", () => { if (vout.getAttribute("src")) showBanner("The result video could not be loaded."); });
function step(frames) {
  vin.pause();
  vin.currentTime = frameTime(frameAt(vin.currentTime) + frames);
}
$("step-back").onclick = () => step(-1);
$("step-fwd").onclick = () => step(1);
function tick() {
  const t = vin.currentTime || 0;
  $("time").textContent = `${fmtTime(t)} / ${fmtTime(duration())}`;
  $("frame-no").textContent = S.project ? `frame ${frameAt(t)}` : "";
  if (!vin.paused) {
    syncOutput(false);
    if (S.view === "preview") refreshPreview();
  }
  drawTimeline();
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);

// -------------------------------------------------------------------------------------- preview
async function refreshPreview() {
  if (!S.project || !S.analysis || S.view !== "preview") return;
  if (S.previewBusy) { S.previewAgain = true; return; }
  S.previewBusy = true;
  const t = vin.currentTime || 0;
  const t0 = performance.now();
  try {
    const speech = speechSetting() === null ? "" : `&preserve_speech=${speechSetting()}`;
    const res = await api(`/api/projects/${S.project.id}/preview?t=${t.toFixed(4)}&renderer=${encodeURIComponent(S.renderer)}${speech}`);
    const blob = await res.blob();
    const img = $("preview-image");
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
    const w = parseFloat(res.headers.get("X-DFM-Weight") || "0");
    const lips = res.headers.get("X-DFM-Speech") === "kept" ? " · lips kept" : "";
    $("preview-note").textContent = `frame ${res.headers.get("X-DFM-Frame")} · ${w > 0 ? `edit weight ${w.toFixed(2)}${lips}` : "unchanged"} · ${Math.round(performance.now() - t0)} ms`;
    $("preview-wait").hidden = true;
  } catch (e) {
    if (e.kind === "renderer") rendererRefused(e.message);
    else if (e.status === 422) showEditError(e.message);
    else if (e.status !== 409) $("preview-note").textContent = `preview failed: ${e.message}`;
  } finally {
    S.previewBusy = false;
    if (S.previewAgain) { S.previewAgain = false; refreshPreview(); }
  }
}

// ----------------------------------------------------------------------------------------- edits
function toDoc(edits) {
  return { format: "dfm-edits", version: 1, edits: edits.map((e) => {
    const d = { start: round3(e.start), end: round3(e.end) };
    if (e.label) d.label = e.label;
    if (e.intensity != null && e.label !== "neutral") d.intensity = typeof e.intensity === "number" ? round3(e.intensity) : e.intensity;
    if (e.nudges && Object.keys(e.nudges).length) d.nudges = e.nudges;
    return d;
  }) };
}
function fromDoc(doc) {
  return (doc.edits || []).map((d) => {
    const frames = d.unit === "frames";
    const toS = (v) => (frames ? (S.analysis ? (S.analysis.times[v] ?? v / fps()) : v / fps()) : v);
    return { start: toS(d.start), end: toS(d.end), label: d.label ?? null, intensity: d.intensity ?? null,
             nudges: { ...(d.nudges || {}) } };
  }).sort((a, b) => a.start - b.start);
}
const snapshot = () => JSON.stringify(S.edits);
function commit(before) {
  if (before === snapshot()) return;
  S.undo.push(before); S.redo = [];
  if (S.undo.length > 200) S.undo.shift();
  updateHistory(); syncEdits();
}
function restore(state) { S.edits = JSON.parse(state); S.selected = Math.min(S.selected, S.edits.length - 1); updateInspector(); syncEdits(); drawTimeline(); }
function undo() { if (!S.undo.length) return; S.redo.push(snapshot()); restore(S.undo.pop()); updateHistory(); }
function redo() { if (!S.redo.length) return; S.undo.push(snapshot()); restore(S.redo.pop()); updateHistory(); }
$("undo").onclick = undo; $("redo").onclick = redo;
function updateHistory() { $("undo").disabled = !S.undo.length; $("redo").disabled = !S.redo.length; }

let syncTimer = null, syncPromise = Promise.resolve();
function syncEdits(delay = 120) {
  clearTimeout(syncTimer);
  syncTimer = setTimeout(() => { syncPromise = pushEdits(); }, delay);
}
async function flushEdits() { clearTimeout(syncTimer); await pushEdits(); }
async function pushEdits() {
  if (!S.project) return;
  try {
    await sendJSON(`/api/projects/${S.project.id}/edits`, "PUT", toDoc(S.edits));
    S.editsValid = true; $("edit-error").hidden = true;
    refreshPreview();
  } catch (e) {
    if (e.status === 422) { S.editsValid = false; showEditError(e.message); } else showBanner(`Could not save the edits: ${e.message}`);
  }
  updateReenact();
}
function showEditError(msg) { $("edit-error").textContent = msg; $("edit-error").hidden = false; }
function updateReenact() {
  $("reenact").disabled = !S.analysis || !S.edits.length || !S.editsValid || !!S.renderJob;
  $("reenact").title = !S.edits.length ? "add an edit on the timeline first" : (!S.editsValid ? "fix the edit list first" : "");
}

function neighbours(index) {
  // the free interval around edit `index`: edits never overlap (one frame shows one edit)
  const me = S.edits[index];
  let lo = 0, hi = duration();
  S.edits.forEach((e, k) => {
    if (k === index) return;
    if (e.start < me.start) lo = Math.max(lo, e.end); else hi = Math.min(hi, e.start);
  });
  return [lo, hi];
}
function selectEdit(i) { S.selected = i; updateInspector(); drawTimeline(); }

// ------------------------------------------------------------------------------------- inspector
function buildControls() {
  const lb = $("label-buttons");
  for (const label of S.vocab.labels) {
    const b = document.createElement("button");
    b.className = "label-btn"; b.textContent = label; b.dataset.label = label;
    b.onclick = () => changeSelected((e) => {
      e.label = label;
      if (label === "neutral") e.intensity = null; else if (e.intensity == null) e.intensity = "high";
    });
    lb.appendChild(b);
  }
  const ib = $("intensity-buttons");
  for (const level of S.vocab.intensities) {
    const b = document.createElement("button");
    b.className = "seg-btn"; b.textContent = level; b.dataset.level = level;
    b.onclick = () => changeSelected((e) => { if (e.label && e.label !== "neutral") e.intensity = level; });
    ib.appendChild(b);
  }
  const rs = $("renderer-select");
  for (const name of S.vocab.renderers || ["warp"]) { const o = document.createElement("option"); o.value = o.textContent = name; rs.appendChild(o); }
  const nn = $("nudge-name");
  for (const name of S.vocab.blendshapes) { const o = document.createElement("option"); o.value = o.textContent = name; nn.appendChild(o); }
  nn.value = "mouthSmile_L";
}
function changeSelected(fn, record = true) {
  const e = S.edits[S.selected];
  if (!e) return;
  const before = snapshot();
  fn(e);
  updateInspector(); drawTimeline();
  if (record) commit(before); else syncEdits(60);
}
let sliderBefore = null;
$("intensity-slider").addEventListener("input", (ev) => {
  if (sliderBefore === null) sliderBefore = snapshot();
  changeSelected((e) => { if (e.label && e.label !== "neutral") e.intensity = parseFloat(ev.target.value); }, false);
});
$("intensity-slider").addEventListener("change", () => { if (sliderBefore !== null) { const b = sliderBefore; sliderBefore = null; commit(b); } });
function setTimeField(which) {
  return (ev) => changeSelected((e) => {
    const [lo, hi] = neighbours(S.selected);
    const v = parseFloat(ev.target.value);
    if (!isFinite(v)) return;
    if (which === "start") e.start = clamp(v, lo, e.end - minEditSeconds());
    else e.end = clamp(v, e.start + minEditSeconds(), hi);
  });
}
$("edit-start").addEventListener("change", setTimeField("start"));
$("edit-end").addEventListener("change", setTimeField("end"));
$("edit-delete").onclick = () => deleteSelected();
function deleteSelected() {
  if (S.selected < 0) return;
  const before = snapshot();
  S.edits.splice(S.selected, 1); S.selected = -1;
  updateInspector(); drawTimeline(); commit(before);
}
$("nudge-add").onclick = () => changeSelected((e) => { e.nudges = e.nudges || {}; if (!(($("nudge-name").value) in e.nudges)) e.nudges[$("nudge-name").value] = 0.3; });

function updateInspector() {
  const e = S.edits[S.selected];
  $("inspector").hidden = !e; $("no-selection").hidden = !!e;
  updateReenact();
  if (!e) return;
  for (const b of $("label-buttons").children) {
    const on = b.dataset.label === e.label;
    b.classList.toggle("active", on);
    b.style.background = on ? COLORS[e.label] : ""; b.style.borderColor = COLORS[b.dataset.label];
  }
  const hasIntensity = e.label && e.label !== "neutral";
  for (const b of $("intensity-buttons").children) { b.classList.toggle("active", e.intensity === b.dataset.level); b.disabled = !hasIntensity; }
  const v = intensityNumber(e);
  $("intensity-slider").disabled = !hasIntensity;
  $("intensity-slider").value = v ?? 0;
  $("intensity-value").textContent = hasIntensity ? v.toFixed(2) : "—";
  $("edit-start").value = e.start.toFixed(2); $("edit-end").value = e.end.toFixed(2);
  const list = $("nudge-list"); list.innerHTML = "";
  const names = Object.keys(e.nudges || {});
  $("nudge-count").textContent = names.length ? `(${names.length})` : "";
  for (const name of names) {
    const row = document.createElement("div"); row.className = "nudge";
    const label = document.createElement("span"); label.textContent = name; label.title = name;
    const r = document.createElement("input"); r.type = "range"; r.min = -1; r.max = 1; r.step = 0.05; r.value = e.nudges[name];
    const out = document.createElement("output"); out.textContent = (+e.nudges[name]).toFixed(2);
    let before = null;
    r.oninput = () => { if (before === null) before = snapshot(); e.nudges[name] = parseFloat(r.value); out.textContent = (+r.value).toFixed(2); syncEdits(60); };
    r.onchange = () => { if (before !== null) { const b = before; before = null; commit(b); } };
    const x = document.createElement("button"); x.textContent = "×"; x.title = `remove ${name}`;
    x.onclick = () => changeSelected((ed) => { delete ed.nudges[name]; });
    row.append(label, r, out, x); list.appendChild(row);
  }
}

$("save-edits").onclick = () => {
  const blob = new Blob([JSON.stringify(toDoc(S.edits), null, 2) + "\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = (S.project ? S.project.name.replace(/\.[^.]+$/, "") : "edits") + ".edits.json";
  a.click(); setTimeout(() => URL.revokeObjectURL(a.href), 1000);
};
$("load-edits").onchange = async (ev) => {
  const f = ev.target.files[0]; ev.target.value = "";
  if (!f || !S.project) return;
  let doc;
  try { doc = JSON.parse(await f.text()); } catch (e) { showEditError(`${f.name}: not valid JSON (${e.message})`); return; }
  try {
    await sendJSON(`/api/projects/${S.project.id}/edits`, "PUT", doc); // the server checks it like the CLI
    const before = snapshot();
    S.edits = fromDoc(doc); S.selected = -1;
    S.undo.push(before); S.redo = []; updateHistory(); updateInspector(); drawTimeline();
    S.editsValid = true; $("edit-error").hidden = true; refreshPreview();
  } catch (e) { showEditError(`${f.name}: ${e.message}`); }
};

// -------------------------------------------------------------------------------------- persons
async function loadPersons() {
  const sel = $("person-select");
  sel.innerHTML = '<option value="">This video only</option>';
  try {
    const persons = await getJSON("/api/persons");
    for (const p of persons.data) { const o = document.createElement("option"); o.value = p.name; o.textContent = `${p.name} (${p.videos} videos${p.trained ? "" : ", not trained"})`; sel.appendChild(o); }
  } catch (_) {}
  sel.value = S.project.person || "";
  $("collection-list").textContent = S.project.collection.length ? `${S.project.collection.length} more video(s) of this person` : "";
}
async function loadCoverage() {
  try { showCoverage(await getJSON(`/api/projects/${S.project.id}/person`)); } catch (_) {}
}
function showCoverage(c) {
  $("person-summary").textContent = c.source;
  const t = $("coverage"); t.innerHTML = "";
  for (const row of c.labels || []) {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${row.label}</td><td style="width:45%"><div class="bar"><i style="width:${Math.round(100 * row.data_share)}%"></i></div></td><td>${Math.round(100 * row.data_share)}%</td>`;
    tr.title = `${row.pairs} frames; ${row.source}`;
    t.appendChild(tr);
  }
  if (!(c.labels || []).length) t.innerHTML = `<tr><td class="muted">${(c.coverage || []).join("; ")}</td></tr>`;
}
$("person-select").onchange = async (ev) => {
  try {
    const c = await sendJSON(`/api/projects/${S.project.id}/person`, "PUT", { person: ev.target.value || null });
    S.project.person = ev.target.value || null; showCoverage(c); refreshPreview();
  } catch (e) { showBanner(`Could not use that person: ${e.message}`); ev.target.value = S.project.person || ""; }
};
$("collection-input").onchange = async (ev) => {
  const f = ev.target.files[0]; ev.target.value = "";
  if (!f || !S.project) return;
  try {
    const { job } = await uploadWithProgress(`/api/projects/${S.project.id}/collection`, f, `Uploading ${f.name}:`);
    $("collection-list").textContent = `analysing ${f.name}…`;
    followJob(job, (st) => { $("collection-list").textContent = `analysing ${f.name}… ${Math.round(100 * st.progress)}%`; }, async (st) => {
      if (st.state === "done") { showCoverage(st.result); S.project = await getJSON(`/api/projects/${S.project.id}`); loadPersons(); refreshPreview(); }
      else { $("collection-list").textContent = ""; showBanner(`Adding ${f.name} failed: ${st.message}`); }
    });
  } catch (e) { showBanner(`Could not add ${f.name}: ${e.message}`); }
};

// ------------------------------------------------------------------------------------- timeline
const canvas = $("timeline");
const ctx2d = canvas.getContext("2d");
const PAD = 10;
const H = 158;
const ROW = { ruler: [0, 18], wave: [20, 34], face: [37, 47], curve: [50, 106], lane: [112, 154] };
let cssWidth = 600;
function resizeTimeline() {
  const dpr = window.devicePixelRatio || 1;
  cssWidth = canvas.clientWidth || 600;
  canvas.width = Math.round(cssWidth * dpr); canvas.height = Math.round(H * dpr);
  canvas.style.height = `${H}px`;
  ctx2d.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawTimeline();
}
window.addEventListener("resize", resizeTimeline);
const xOf = (t) => PAD + (duration() > 0 ? t / duration() : 0) * (cssWidth - 2 * PAD);
const tOf = (x) => clamp((x - PAD) / (cssWidth - 2 * PAD), 0, 1) * duration();

function drawTimeline() {
  const c = ctx2d, W = cssWidth, dur = duration();
  c.clearRect(0, 0, W, H);
  if (!S.project || dur <= 0) return;
  // ruler
  c.fillStyle = "#9aa1ae"; c.font = "10px system-ui"; c.strokeStyle = "#343946"; c.lineWidth = 1;
  const stepS = [0.5, 1, 2, 5, 10, 30, 60].find((s) => (W - 2 * PAD) / (dur / s) > 48) || 120;
  for (let t = 0; t <= dur + 1e-6; t += stepS) {
    const x = Math.round(xOf(t)) + 0.5;
    c.beginPath(); c.moveTo(x, 12); c.lineTo(x, 18); c.stroke();
    c.fillText(t < 60 ? `${t.toFixed(stepS < 1 ? 1 : 0)} s` : fmtTime(t).replace(/\.\d+$/, ""), x + 2, 10);
  }
  // the soundtrack's envelope
  if (S.wave && S.wave.peaks.length) {
    const [w0, w1] = ROW.wave, mid = (w0 + w1) / 2, half = (w1 - w0) / 2, n = S.wave.peaks.length;
    c.fillStyle = "#8089a0";
    for (let k = 0; k < n; k++) {
      const h = Math.max(0.5, S.wave.peaks[k] * half);
      const x0 = xOf(k / n * dur), x1 = xOf((k + 1) / n * dur);
      c.fillRect(x0, mid - h, Math.max(1, x1 - x0 - 0.3), 2 * h);
    }
    if (!S.wave.has_audio || S.wave.peaks.every((v) => v === 0)) {
      c.fillStyle = "#6b7280"; c.font = "10px system-ui"; c.fillText(S.wave.has_audio ? "silent soundtrack" : "no audio", PAD + 4, w1 - 3);
    }
  }
  // face-found band
  const a = S.analysis;
  if (a) {
    const n = a.frames;
    for (let i = 0; i < n; i++) {
      const x0 = xOf(a.times[i]), x1 = i + 1 < n ? xOf(a.times[i + 1]) : xOf(dur);
      c.fillStyle = a.valid[i] ? "#2f7d55" : "#7d2f35";
      c.fillRect(x0, ROW.face[0], Math.max(1, x1 - x0 + 0.5), ROW.face[1] - ROW.face[0]);
    }
    // VA curve
    const [y0, y1] = ROW.curve, mid = (y0 + y1) / 2, half = (y1 - y0) / 2 - 2;
    c.fillStyle = "#181b20"; c.fillRect(PAD, y0, W - 2 * PAD, y1 - y0);
    c.strokeStyle = "#343946"; c.beginPath(); c.moveTo(PAD, mid + 0.5); c.lineTo(W - PAD, mid + 0.5); c.stroke();
    for (const [key, color] of [["valence", "#f2c14e"], ["arousal", "#56b6c2"]]) {
      c.strokeStyle = color; c.lineWidth = 1.5; c.beginPath();
      let pen = false;
      for (let i = 0; i < n; i++) {
        const v = a[key][i];
        if (v == null) { pen = false; continue; }
        const x = xOf(a.times[i]), y = mid - v * half;
        if (pen) c.lineTo(x, y); else c.moveTo(x, y);
        pen = true;
      }
      c.stroke();
    }
    c.lineWidth = 1;
    c.fillStyle = "#6b7280"; c.fillText("+1", 2, y0 + 9); c.fillText("−1", 2, y1 - 2);
  } else {
    c.fillStyle = "#252932"; c.fillRect(PAD, ROW.face[0], W - 2 * PAD, ROW.curve[1] - ROW.face[0]);
    c.fillStyle = "#9aa1ae"; c.font = "12px system-ui";
    c.fillText($("analysis-state").textContent || "analysing…", PAD + 8, (ROW.face[0] + ROW.curve[1]) / 2 + 4);
  }
  // edit lane
  const [l0, l1] = ROW.lane;
  c.fillStyle = "#181b20"; c.fillRect(PAD, l0, W - 2 * PAD, l1 - l0);
  if (!S.edits.length) {
    c.fillStyle = "#6b7280"; c.font = "12px system-ui";
    c.fillText("drag here to add an edit", PAD + 8, (l0 + l1) / 2 + 4);
  }
  S.edits.forEach((e, i) => {
    const x0 = xOf(e.start), x1 = xOf(e.end), color = COLORS[e.label] || COLORS.null;
    const k = intensityNumber(e);
    // the block, and inside it the edit's weight over time: ramps in and out over the transitions
    c.fillStyle = color; c.globalAlpha = 0.28; c.fillRect(x0, l0 + 3, x1 - x0, l1 - l0 - 6);
    const ramp = Math.min((x1 - x0) / 2, xOf(20 / fps()) - xOf(0));
    const top = l1 - 3 - (l1 - l0 - 6) * (e.label === "neutral" ? 0.6 : 0.35 + 0.65 * (k ?? 0.6));
    c.globalAlpha = 0.9;
    c.beginPath(); c.moveTo(x0, l1 - 3); c.lineTo(x0 + ramp, top); c.lineTo(x1 - ramp, top); c.lineTo(x1, l1 - 3); c.closePath(); c.fill();
    c.globalAlpha = 1;
    if (i === S.selected) { c.strokeStyle = "#fff"; c.lineWidth = 2; c.strokeRect(x0 + 1, l0 + 2, x1 - x0 - 2, l1 - l0 - 4); c.lineWidth = 1; }
    c.fillStyle = "#111"; c.font = "600 12px system-ui";
    c.save(); c.beginPath(); c.rect(x0, l0, x1 - x0, l1 - l0); c.clip();
    c.fillText(editText(e) + (Object.keys(e.nudges || {}).length ? " +AU" : ""), x0 + 6, (l0 + l1) / 2 + 4);
    c.restore();
  });
  // playhead
  const xp = Math.round(xOf(vin.currentTime || 0)) + 0.5;
  c.strokeStyle = "#ff5c5c"; c.lineWidth = 1.5; c.beginPath(); c.moveTo(xp, 0); c.lineTo(xp, H); c.stroke(); c.lineWidth = 1;
}

function timelineTip(t, hit) {
  if (hit) { const e = S.edits[hit.index]; return `${editText(e)} · ${e.start.toFixed(2)}–${e.end.toFixed(2)} s · drag to move, drag an end to resize, Delete removes it`; }
  const a = S.analysis;
  if (!a) return fmtTime(t);
  const i = frameAt(t), v = a.valence[i], ar = a.arousal[i];
  const va = v == null ? "no affect estimate" : `valence ${v.toFixed(2)}, arousal ${ar.toFixed(2)}`;
  return `${fmtTime(t)} · frame ${i} · ${a.valid[i] ? "face found" : "no face"} · ${va}`;
}
function hitEdit(x) {
  for (let i = S.edits.length - 1; i >= 0; i--) {
    const e = S.edits[i], x0 = xOf(e.start), x1 = xOf(e.end);
    if (x >= x0 - 5 && x <= x1 + 5) {
      const edge = Math.min(8, (x1 - x0) / 3);
      return { index: i, part: x <= x0 + edge ? "start" : x >= x1 - edge ? "end" : "body" };
    }
  }
  return null;
}
canvas.addEventListener("mousemove", (ev) => {
  if (S.drag) return;
  const y = ev.offsetY, hit = y >= ROW.lane[0] ? hitEdit(ev.offsetX) : null;
  canvas.title = timelineTip(tOf(ev.offsetX), hit);
  canvas.style.cursor = !hit ? (y >= ROW.lane[0] ? "copy" : "text") : hit.part === "body" ? "grab" : "ew-resize";
});
canvas.addEventListener("mousedown", (ev) => {
  if (!S.project) return;
  canvas.focus();
  const x = ev.offsetX, y = ev.offsetY, t = tOf(x);
  if (y < ROW.lane[0]) { S.drag = { kind: "seek" }; vin.pause(); vin.currentTime = t; return; }
  if (!S.analysis) { showEditError("Wait until the face is found before adding edits."); return; }
  const hit = hitEdit(x);
  const before = snapshot();
  if (hit) {
    selectEdit(hit.index);
    const e = S.edits[hit.index];
    S.drag = { kind: hit.part, index: hit.index, before, t0: t, start: e.start, end: e.end, bounds: neighbours(hit.index) };
  } else {
    const e = { start: t, end: t, label: "happy", intensity: "high", nudges: {} };
    S.edits.push(e); S.edits.sort((a, b) => a.start - b.start);
    const index = S.edits.indexOf(e);
    S.selected = index;
    const bounds = neighbours(index);
    if (t < bounds[0] || t > bounds[1]) { S.edits.splice(index, 1); S.selected = -1; return; }
    S.drag = { kind: "create", index, before, t0: t, bounds };
  }
});
window.addEventListener("mousemove", (ev) => {
  const d = S.drag;
  if (!d) return;
  const rect = canvas.getBoundingClientRect();
  const t = tOf(ev.clientX - rect.left);
  if (d.kind === "seek") { vin.currentTime = t; return; }
  const e = S.edits[d.index], [lo, hi] = d.bounds, m = minEditSeconds();
  if (d.kind === "create") { e.start = clamp(Math.min(d.t0, t), lo, hi); e.end = clamp(Math.max(d.t0, t), lo, hi); }
  else if (d.kind === "body") {
    const len = d.end - d.start;
    e.start = clamp(d.start + (t - d.t0), lo, hi - len); e.end = e.start + len;
  } else if (d.kind === "start") e.start = clamp(t, lo, e.end - m);
  else if (d.kind === "end") e.end = clamp(t, e.start + m, hi);
  updateInspector(); drawTimeline();
});
window.addEventListener("mouseup", () => {
  const d = S.drag;
  S.drag = null;
  if (!d || d.kind === "seek") return;
  const e = S.edits[d.index], [lo, hi] = d.bounds, m = minEditSeconds();
  if (d.kind === "create" && e.end - e.start < m) {  // a click or a short drag: the shortest edit
    e.end = Math.min(hi, e.start + m); e.start = Math.max(lo, e.end - m);
    if (e.end - e.start < m - 1e-6) { S.edits.splice(d.index, 1); S.selected = -1; showEditError("No room for an edit here: edits may not overlap."); }
  }
  S.edits.sort((a, b) => a.start - b.start);
  S.selected = S.edits.indexOf(e);
  updateInspector(); drawTimeline(); commit(d.before);
});

// ------------------------------------------------------------------------------------- keyboard
document.addEventListener("keydown", (ev) => {
  const tag = (ev.target.tagName || "").toLowerCase();
  if (["input", "select", "textarea"].includes(tag) && ev.target.type !== "range") return;
  if (!S.project) return;
  const mod = ev.ctrlKey || ev.metaKey;
  if (ev.key === "Escape" && !$("face-layer").hidden) { hideFaces(); return; }
  if (ev.key === " ") { ev.preventDefault(); togglePlay(); }
  else if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
    if (ev.target.type === "range") return;
    ev.preventDefault();
    const dir = ev.key === "ArrowLeft" ? -1 : 1;
    step(ev.shiftKey ? dir * Math.round(fps()) : dir);
  } else if ((ev.key === "Delete" || ev.key === "Backspace") && S.selected >= 0) { ev.preventDefault(); deleteSelected(); }
  else if (mod && ev.key.toLowerCase() === "z") { ev.preventDefault(); if (ev.shiftKey) redo(); else undo(); }
  else if (mod && ev.key.toLowerCase() === "y") { ev.preventDefault(); redo(); }
  else if (ev.key === "Escape") selectEdit(-1);
});

// ------------------------------------------------------------------------------------------ start
(async function start() {
  try { S.vocab = await getJSON("/api/vocabulary"); buildControls(); }
  catch (e) { showBanner(`Could not reach the DFM server: ${e.message}`); return; }
  await refreshProjects();
  const m = location.hash.match(/p=([0-9a-f]{12})/);
  if (m) openProject(m[1]);
})();
