// filesearch web UI: plain JavaScript, no framework, no build step. Talks to the same server's
// JSON API (/config, /search, /documents/{id}/..., /api/feedback). Thumbnails, previews and
// downloads are fetched with the bearer token and shown through blob: URLs, so no token ever
// appears in a URL. The query, mode, filters, sort and page live in the address bar (shareable;
// Back and Forward replay them).
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  config: null,
  token: localStorage.getItem('filesearch.token') || '',
  image: null,          // File used as the query image (cannot live in the URL)
  similarTo: null,      // {id, name}
  page: 0,
  lastMode: '',         // the mode of the results shown (for feedback)
  lastQuery: '',
  blobUrls: [],
};

// Sorting by date or name re-orders the results that stand out: the most relevant SORT_WINDOW.
const SORT_WINDOW = 100;

// Form fields that live in the URL: [URL key, element id].
const URL_FIELDS = [
  ['q', 'q'], ['mode', 'f-mode'], ['type', 'f-type'], ['extension', 'f-ext'], ['pathPrefix', 'f-path'],
  ['modifiedAfter', 'f-after'], ['modifiedBefore', 'f-before'], ['takenAfter', 'f-taken-after'],
  ['takenBefore', 'f-taken-before'], ['limit', 'f-limit'], ['sort', 'sort'],
];

function headers() {
  return state.token ? { Authorization: 'Bearer ' + state.token } : {};
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (res.status === 401) {
    $('auth').hidden = false;
    $('token').focus();
  }
  if (!res.ok) {
    let message = res.status + ' ' + res.statusText;
    try {
      const body = await res.json();
      if (body.error) message = body.error.message + ' (' + body.error.code + ')';
    } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return res;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

function showNotice(message) {
  $('notice').textContent = message || '';
  $('notice').hidden = !message;
}

// --- the token: what it says about its holder, shown to them ---

function tokenClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch (e) {
    return null;
  }
}

function fmtDateTime(d) {
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function showTokenStatus() {
  const claims = state.token ? tokenClaims(state.token) : null;
  $('token-status').hidden = !claims;
  if (!claims) return;
  const paths = claims.paths ? [].concat(claims.paths).join(', ') : 'all folders';
  const expires = typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : null;
  const expired = expires && expires.getTime() < Date.now();
  $('token-who').textContent = 'Signed in as ' + (claims.sub || 'unnamed user') + ' · ' + paths + ' · ' +
    (expires ? (expired ? 'token expired on ' : 'valid until ') + fmtDateTime(expires) : 'no expiry');
  $('token-who').dataset.expires = expires ? expires.toISOString() : '';
  $('token-status').classList.toggle('expired', !!expired);
  if (expired) $('auth').hidden = false;
}

// --- URL state ---

function readUrl() {
  const p = new URLSearchParams(location.search);
  for (const [key, id] of URL_FIELDS) {
    const el = $(id);
    const v = p.get(key);
    if (el.tagName === 'SELECT') {
      const fallback = key === 'limit' ? '24' : '';
      el.value = v !== null && [...el.options].some((o) => o.value === v) ? v : fallback;
    } else {
      el.value = v || '';
    }
  }
  const page = parseInt(p.get('page') || '1', 10);
  state.page = Number.isFinite(page) && page > 1 ? page - 1 : 0;
  const similar = p.get('similarTo');
  state.similarTo = similar ? { id: similar, name: p.get('similarName') || 'document ' + similar } : null;
  if ([...p.keys()].some((k) => !['q', 'limit', 'sort', 'page', 'similarTo', 'similarName'].includes(k) && p.get(k))) {
    $('filters').open = true;
  }
}

function urlFor() {
  const p = new URLSearchParams();
  for (const [key, id] of URL_FIELDS) {
    const v = $(id).value.trim();
    if (v && !(key === 'limit' && v === '24')) p.set(key, v);
  }
  if (state.similarTo) {
    p.set('similarTo', state.similarTo.id);
    p.set('similarName', state.similarTo.name);
  }
  if (state.page > 0) p.set('page', String(state.page + 1));
  const s = p.toString();
  return location.pathname + (s ? '?' + s : '');
}

function filters() {
  const f = {};
  const add = (key, id) => { const v = $(id).value.trim(); if (v) f[key] = v; };
  add('type', 'f-type');
  add('extension', 'f-ext');
  add('pathPrefix', 'f-path');
  add('modifiedAfter', 'f-after');
  add('modifiedBefore', 'f-before');
  add('takenAfter', 'f-taken-after');
  add('takenBefore', 'f-taken-before');
  if (state.config && state.config.vectorSearch) add('mode', 'f-mode');
  return f;
}

function releaseBlobs() {
  for (const u of state.blobUrls) URL.revokeObjectURL(u);
  state.blobUrls = [];
}

async function blobUrl(path) {
  const res = await api(path);
  const url = URL.createObjectURL(await res.blob());
  state.blobUrls.push(url);
  return url;
}

// --- formatting ---

function fmtScore(v) {
  return v === null || v === undefined ? '–' : Number(v).toPrecision(3);
}

function fmtSize(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u ? n.toFixed(1) : n) + ' ' + units[u];
}

// "today", "yesterday", "3 days ago" within a week; else "12 Mar 2024".
function fmtDate(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const days = Math.floor((Date.now() - d.getTime()) / 86400000);
  if (days >= 0 && days < 7) {
    if (days === 0) return 'today';
    if (days === 1) return 'yesterday';
    return days + ' days ago';
  }
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

function scoreText(h) {
  return 'score ' + fmtScore(h.score) +
    ' · keywords ' + (h.textRank ? '#' + h.textRank + ' (' + fmtScore(h.textScore) + ')' : '–') +
    ' · visual ' + (h.vectorRank ? '#' + h.vectorRank + ' (' + fmtScore(h.vectorScore) + ')' : '–');
}

function whyText(h) {
  const m = h.matched || [];
  if (m.includes('words') && m.includes('picture')) return 'words and picture';
  if (m.includes('picture')) return 'picture';
  return 'words';
}

function folderOf(path) {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(0, i + 1) : path;
}

const KINDS = [
  ['pdf', 'PDF', ['pdf']],
  ['doc', 'DOC', ['doc', 'docx', 'odt', 'rtf', 'pages']],
  ['sheet', 'XLS', ['xls', 'xlsx', 'ods', 'csv', 'tsv']],
  ['slides', 'PPT', ['ppt', 'pptx', 'odp', 'key']],
  ['mail', 'MAIL', ['eml', 'msg', 'mbox']],
  ['book', 'BOOK', ['epub']],
  ['web', 'WEB', ['html', 'htm', 'xhtml']],
  ['archive', 'ZIP', ['zip', 'tar', 'gz', '7z']],
];

function kindOf(h) {
  if ((h.type || '').startsWith('image/')) return ['image', 'IMG'];
  for (const [kind, label, exts] of KINDS) if (exts.includes(h.extension)) return [kind, label];
  if ((h.type || '').startsWith('text/')) return ['text', (h.extension || 'TXT').toUpperCase().slice(0, 4)];
  return ['file', (h.extension || 'FILE').toUpperCase().slice(0, 4)];
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// --- result cards ---

function filterByFolder(folder) {
  $('f-path').value = folder;
  $('filters').open = true;
  state.similarTo = null;
  if ($('preview').open) $('preview').close();
  run(true, true);
}

async function vote(h, value, up, down) {
  const body = { query: state.lastQuery, mode: state.lastMode, doc: h.id, vote: value };
  try {
    await api('/api/feedback', { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
    up.setAttribute('aria-pressed', String(value === 1));
    down.setAttribute('aria-pressed', String(value === -1));
  } catch (e) {
    showError(e.status === 404 ? 'This server does not take feedback yet (' + e.message + ').' : 'Feedback not saved: ' + e.message);
  }
}

function card(h) {
  const li = el('li', 'card');
  li.dataset.id = h.id;
  const [kind, label] = kindOf(h);
  li.classList.add('kind-' + kind);
  if (h.thumbnailUrl) {
    const fig = el('button', 'thumb');
    fig.type = 'button';
    fig.setAttribute('aria-label', 'Preview ' + h.name);
    fig.title = scoreText(h);
    const img = document.createElement('img');
    img.alt = '';
    blobUrl(h.thumbnailUrl).then((u) => { img.src = u; }).catch(() => { fig.textContent = label; });
    fig.appendChild(img);
    fig.addEventListener('click', () => preview(h));
    li.appendChild(fig);
  }
  const head = el('div', 'card-head');
  const icon = el('span', 'type-icon kind-' + kind, label);
  icon.title = h.type;
  head.appendChild(icon);
  const name = el('button', 'name', h.name);
  name.type = 'button';
  name.title = 'Preview ' + h.path;
  name.addEventListener('click', () => preview(h));
  head.appendChild(name);
  li.appendChild(head);
  const folder = el('button', 'folder', folderOf(h.path));
  folder.type = 'button';
  folder.title = 'Show only files in ' + folderOf(h.path);
  folder.addEventListener('click', () => filterByFolder(folderOf(h.path)));
  li.appendChild(folder);
  if (h.snippet && h.snippet.length) {
    const p = el('p', 'snippet');
    for (const part of h.snippet) p.appendChild(part.match ? el('mark', '', part.text) : document.createTextNode(part.text));
    li.appendChild(p);
  }
  const meta = el('p', 'meta');
  const when = el('time', 'date', fmtDate(h.modified));
  when.dateTime = h.modified;
  when.title = 'Modified ' + h.modified;
  meta.append(document.createTextNode((h.title ? h.title + ' · ' : '') + fmtSize(h.size) + ' · '), when);
  li.appendChild(meta);
  const foot = el('div', 'card-foot');
  const why = el('span', 'why why-' + whyText(h).replace(/ /g, '-'), 'matched: ' + whyText(h));
  foot.appendChild(why);
  const score = el('span', 'score', 'score ' + fmtScore(h.score));
  score.title = scoreText(h);
  foot.appendChild(score);
  li.appendChild(foot);
  const actions = el('div', 'card-actions');
  const up = el('button', 'vote vote-up', '▲');
  const down = el('button', 'vote vote-down', '▼');
  up.type = down.type = 'button';
  up.setAttribute('aria-label', 'Good result: ' + h.name);
  down.setAttribute('aria-label', 'Poor result: ' + h.name);
  up.title = 'Thumbs up: a good result for this search';
  down.title = 'Thumbs down: a poor result for this search';
  up.setAttribute('aria-pressed', 'false');
  down.setAttribute('aria-pressed', 'false');
  up.addEventListener('click', () => vote(h, 1, up, down));
  down.addEventListener('click', () => vote(h, -1, up, down));
  actions.append(up, down);
  if (state.config && state.config.similarSearch && h.type.startsWith('image/')) {
    const sim = el('button', 'similar', 'Find similar');
    sim.type = 'button';
    sim.setAttribute('aria-label', 'Find images similar to ' + h.name);
    sim.addEventListener('click', () => {
      state.similarTo = { id: String(h.id), name: h.name };
      clearImage(false);
      $('q').value = '';
      run(true, true);
    });
    actions.appendChild(sim);
  }
  li.appendChild(actions);
  return li;
}

function sortHits(hits, how) {
  const out = hits.slice();
  if (how === 'date') out.sort((a, b) => (b.modified > a.modified ? 1 : b.modified < a.modified ? -1 : 0));
  if (how === 'name') out.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }));
  return out;
}

function render(hits) {
  releaseBlobs();
  const images = hits.filter((h) => h.type.startsWith('image/'));
  const docs = hits.filter((h) => !h.type.startsWith('image/'));
  const mixed = images.length > 0 && docs.length > 0;
  $('images').hidden = !mixed;
  $('image-strip').replaceChildren(...(mixed ? images.map(card) : []));
  $('results').replaceChildren(...(mixed ? docs : hits).map(card));
}

// --- search ---

// Runs the search the form and state describe. `reset`: back to page 1; `push`: a new history
// entry (a user's action; Back returns to the previous search).
async function run(reset, push) {
  showError('');
  await refreshConfig();  // an administrator may have turned image search off or on since the last search
  if (reset) state.page = 0;
  if (push && !state.image) history.pushState(null, '', urlFor());
  else if (!state.image) history.replaceState(null, '', urlFor());
  const q = $('q').value.trim();
  const f = filters();
  const limit = Number($('f-limit').value);
  const sort = $('sort').value;
  if (!q && !state.image && !state.similarTo) {
    $('summary').textContent = 'Type some words' + (state.config && state.config.imageSearch ? ' or give an image' : '') + ' to search.';
    render([]);
    $('pager').hidden = true;
    return;
  }
  // Relevance pages on the server; a sorted view sorts the SORT_WINDOW most relevant and pages here.
  if (sort) { f.limit = String(SORT_WINDOW); } else { f.limit = String(limit); f.from = String(state.page * limit); }
  let res;
  try {
    if (state.image) {
      const form = new FormData();
      form.append('image', state.image);
      if (q) form.append('q', q);
      for (const [k, v] of Object.entries(f)) form.append(k, v);
      res = await api('/search', { method: 'POST', body: form });
    } else {
      const p = new URLSearchParams(f);
      if (q) p.set('q', q);
      if (state.similarTo) p.set('similarTo', state.similarTo.id);
      res = await api('/search?' + p.toString());
    }
  } catch (e) {
    showError(e.message);
    return;
  }
  const body = await res.json();
  state.lastMode = body.mode;
  state.lastQuery = q;
  let hits = body.hits;
  let more;
  let total = body.total;
  let exact = body.totalExact;
  if (sort) {
    const all = sortHits(hits, sort);
    hits = all.slice(state.page * limit, (state.page + 1) * limit);
    more = (state.page + 1) * limit < all.length;
    if (total > all.length) { total = all.length; exact = false; }
  } else {
    more = !!body.nextCursor || state.page * limit + hits.length < body.total;
  }
  render(hits);
  const first = state.page * limit + 1;
  const what = state.similarTo ? 'similar to ' + state.similarTo.name : state.image ? 'like your image' : 'for “' + q + '”';
  const order = sort === 'date' ? ', newest first' : sort === 'name' ? ', by name' : '';
  $('summary').textContent = hits.length
    ? 'Results ' + first + '–' + (first + hits.length - 1) + ' of ' + (exact ? '' : 'about ') + total +
      ' ' + what + ' (' + body.mode + ', ' + body.tookMs.toFixed(1) + ' ms' + order + ')' +
      (sort && body.total > SORT_WINDOW ? ' — sorting the ' + SORT_WINDOW + ' most relevant' : '')
    : 'No results ' + what + '.';
  $('pager').hidden = state.page === 0 && !more;
  $('prev').disabled = state.page === 0;
  $('next').disabled = !more;
  $('page-label').textContent = 'Page ' + (state.page + 1);
}

// --- preview ---

function pre(text) {
  const p = el('pre', 'preview-text');
  p.textContent = text.length > 100000 ? text.slice(0, 100000) + '\n…' : text;
  return p;
}

async function previewText(h, bodyEl) {
  try {
    const t = await (await api('/documents/' + h.id + '/text')).json();
    bodyEl.appendChild(t.text ? pre(t.text) : el('p', 'muted', 'This file has no text.'));
  } catch (e) {
    bodyEl.appendChild(el('p', 'muted', 'No text: ' + e.message));
  }
}

async function preview(h) {
  const dlg = $('preview');
  $('preview-title').textContent = h.name;
  const bodyEl = $('preview-body');
  bodyEl.replaceChildren();
  const meta = $('preview-meta');
  meta.replaceChildren();
  const rows = [['Path', h.path], ['Type', h.type], ['Size', fmtSize(h.size)], ['Modified', fmtDate(h.modified) + ' (' + h.modified + ')']];
  if (h.title) rows.push(['Title', h.title]);
  if (h.author) rows.push(['Author', h.author]);
  if (h.created) rows.push(['Created', h.created]);
  if (h.saved) rows.push(['Saved', h.saved]);
  if (h.taken) rows.push(['Taken', h.taken]);
  if (h.camera) rows.push(['Camera', h.camera]);
  if (h.gps) rows.push(['Location', h.gps.lat.toFixed(5) + ', ' + h.gps.lon.toFixed(5)]);
  rows.push(['Matched', whyText(h)]);
  rows.push(['Scores', scoreText(h)]);
  for (const [k, v] of rows) meta.append(el('dt', '', k), el('dd', '', v));
  $('preview-download').onclick = async () => {
    try {
      const a = document.createElement('a');
      a.href = await blobUrl('/documents/' + h.id + '/content');
      a.download = h.name;
      a.click();
    } catch (e) { showError(e.message); }
  };
  $('preview-folder').onclick = () => filterByFolder(folderOf(h.path));
  $('preview-copy').onclick = async () => {
    try { await navigator.clipboard.writeText(h.path); $('preview-copy').textContent = 'Copied'; } catch (e) { showError('Copy failed: ' + e.message); }
  };
  $('preview-copy').textContent = 'Copy path';
  if (!dlg.open) dlg.showModal();
  const isImage = h.type.startsWith('image/') && h.type !== 'image/svg+xml';
  try {
    if (isImage || h.type === 'application/pdf') {
      const img = document.createElement('img');
      img.alt = isImage ? h.name : 'First page of ' + h.name;
      img.className = isImage ? 'preview-image' : 'preview-page';
      try {
        img.src = await blobUrl('/documents/' + h.id + '/preview');
      } catch (e) {
        if (!isImage) throw e;
        img.src = await blobUrl(h.thumbnailUrl || '/documents/' + h.id + '/content');
      }
      bodyEl.appendChild(img);
    }
  } catch (e) {
    bodyEl.appendChild(el('p', 'muted', 'No picture: ' + e.message));
  }
  if (!isImage) await previewText(h, bodyEl);
}

// --- image queries ---

function setImage(file) {
  if (!file || !file.type.startsWith('image/')) { showError('That is not an image.'); return; }
  if (state.config && file.size > state.config.maxImageBytes) { showError('The image is larger than the server accepts.'); return; }
  state.image = file;
  state.similarTo = null;
  $('image-preview').src = URL.createObjectURL(file);
  $('image-name').textContent = file.name || 'pasted image';
  $('image-chosen').hidden = false;
  $('image-hint').hidden = true;
  run(true, false);
}

function clearImage(rerun) {
  state.image = null;
  $('image-input').value = '';
  $('image-chosen').hidden = true;
  $('image-hint').hidden = false;
  if (rerun) run(true, true);
}

function applyConfig(cfg) {
  state.config = cfg;
  document.body.classList.toggle('no-vector', !cfg.vectorSearch);
  document.body.classList.toggle('no-image', !cfg.imageSearch);
  for (const e of document.querySelectorAll('.vector-only')) e.hidden = !cfg.vectorSearch || (e.id === 'image-zone' && !cfg.imageSearch);
  // The reason says who turned it off (the administrator, or no model loaded) and why.
  showNotice(cfg.imageSearch ? '' : cfg.reason || 'Image search is off.');
  if (!cfg.imageSearch && state.image) clearImage(false);
  if (!cfg.similarSearch) state.similarTo = null;
  if (cfg.authRequired && !state.token) $('auth').hidden = false;
}

async function refreshConfig() {
  try {
    applyConfig(await (await fetch('/config')).json());
  } catch (e) {
    showError('Cannot reach the server: ' + e.message);
  }
}

async function init() {
  await refreshConfig();
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.similarTo = null;
    run(true, true);
  });
  for (const id of ['f-type', 'f-mode', 'f-limit', 'f-after', 'f-before', 'f-taken-after', 'f-taken-before', 'sort']) {
    $(id).addEventListener('change', () => run(true, true));
  }
  for (const id of ['f-ext', 'f-path']) $(id).addEventListener('change', () => run(true, true));
  $('prev').addEventListener('click', () => { if (state.page > 0) { state.page--; run(false, true); } });
  $('next').addEventListener('click', () => { state.page++; run(false, true); });
  $('image-input').addEventListener('change', (e) => setImage(e.target.files[0]));
  $('image-clear').addEventListener('click', () => clearImage(true));
  const zone = $('image-zone');
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('drag'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('drag'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('drag');
    if (state.config && state.config.imageSearch && e.dataTransfer.files.length) setImage(e.dataTransfer.files[0]);
  });
  document.addEventListener('paste', (e) => {
    if (!state.config || !state.config.imageSearch) return;
    for (const item of e.clipboardData.items) {
      if (item.type.startsWith('image/')) { setImage(item.getAsFile()); e.preventDefault(); return; }
    }
  });
  $('token').value = state.token;
  $('token-save').addEventListener('click', () => {
    state.token = $('token').value.trim();
    localStorage.setItem('filesearch.token', state.token);
    $('auth').hidden = true;
    showTokenStatus();
    run(true, false);
  });
  $('token-clear').addEventListener('click', () => {
    state.token = '';
    localStorage.removeItem('filesearch.token');
    $('token').value = '';
    showTokenStatus();
    refreshConfig();
  });
  showTokenStatus();
  $('preview-close').addEventListener('click', () => $('preview').close());
  window.addEventListener('popstate', () => {
    clearImage(false);
    readUrl();
    run(false, false);
  });
  readUrl();
  if ($('q').value.trim() || state.similarTo) run(false, false);
}

document.addEventListener('DOMContentLoaded', init);
