// filesearch web UI: plain JavaScript, no framework, no build step. Talks to the same server's
// JSON API (/config, /search, /documents/{id}...). Thumbnails and previews are fetched with the
// bearer token and shown through blob: URLs, so no token ever appears in a URL.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  config: null,
  token: localStorage.getItem('filesearch.token') || '',
  image: null,          // File used as the query image
  similarTo: null,      // {id, name}
  cursors: [null],      // searchAfter of each page seen; cursors[i] starts page i
  page: 0,
  blobUrls: [],
};

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
    throw new Error(message);
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
  f.limit = $('f-limit').value;
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

function fmtScore(v) {
  return v === null || v === undefined ? '–' : Number(v).toPrecision(3);
}

function fmtSize(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u ? n.toFixed(1) : n) + ' ' + units[u];
}

function scoreText(h) {
  return 'score ' + fmtScore(h.score) +
    ' · keywords ' + (h.textRank ? '#' + h.textRank + ' (' + fmtScore(h.textScore) + ')' : '–') +
    ' · visual ' + (h.vectorRank ? '#' + h.vectorRank + ' (' + fmtScore(h.vectorScore) + ')' : '–');
}

function card(h) {
  const li = document.createElement('li');
  li.className = 'card';
  const fig = document.createElement('button');
  fig.type = 'button';
  fig.className = 'thumb';
  fig.setAttribute('aria-label', 'Preview ' + h.name);
  fig.title = scoreText(h);
  if (h.thumbnailUrl) {
    const img = document.createElement('img');
    img.alt = '';
    blobUrl(h.thumbnailUrl).then((u) => { img.src = u; }).catch(() => { fig.textContent = h.extension || 'file'; });
    fig.appendChild(img);
  } else {
    const ext = document.createElement('span');
    ext.className = 'ext';
    ext.textContent = (h.extension || 'file').toUpperCase();
    fig.appendChild(ext);
  }
  fig.addEventListener('click', () => preview(h));
  li.appendChild(fig);
  const name = document.createElement('p');
  name.className = 'name';
  name.textContent = h.name;
  name.title = h.path;
  li.appendChild(name);
  const meta = document.createElement('p');
  meta.className = 'meta';
  meta.textContent = (h.title ? h.title + ' · ' : '') + h.type + ' · ' + fmtSize(h.size);
  li.appendChild(meta);
  const score = document.createElement('p');
  score.className = 'score';
  score.textContent = scoreText(h);
  li.appendChild(score);
  if (state.config && state.config.similarSearch && h.type.startsWith('image/')) {
    const sim = document.createElement('button');
    sim.type = 'button';
    sim.className = 'similar';
    sim.textContent = 'Find similar';
    sim.setAttribute('aria-label', 'Find images similar to ' + h.name);
    sim.addEventListener('click', () => {
      state.similarTo = { id: h.id, name: h.name };
      clearImage(false);
      $('q').value = '';
      search(true);
    });
    li.appendChild(sim);
  }
  return li;
}

async function search(reset) {
  showError('');
  await refreshConfig();  // an administrator may have turned image search off or on since the last search
  if (reset) { state.cursors = [null]; state.page = 0; }
  const q = $('q').value.trim();
  const f = filters();
  if (!q && !state.image && !state.similarTo) {
    $('summary').textContent = 'Type some words' + (state.config && state.config.imageSearch ? ' or give an image' : '') + ' to search.';
    return;
  }
  const cursor = state.cursors[state.page];
  let res;
  try {
    if (state.image) {
      const form = new FormData();
      form.append('image', state.image);
      if (q) form.append('q', q);
      for (const [k, v] of Object.entries(f)) form.append(k, v);
      if (cursor) form.append('searchAfter', cursor);
      res = await api('/search', { method: 'POST', body: form });
    } else {
      const p = new URLSearchParams(f);
      if (q) p.set('q', q);
      if (state.similarTo) p.set('similarTo', state.similarTo.id);
      if (cursor) p.set('searchAfter', cursor);
      res = await api('/search?' + p.toString());
    }
  } catch (e) {
    showError(e.message);
    return;
  }
  const body = await res.json();
  releaseBlobs();
  const list = $('results');
  list.replaceChildren(...body.hits.map(card));
  const limit = Number(f.limit);
  const first = state.page * limit + 1;
  const what = state.similarTo ? 'similar to ' + state.similarTo.name : state.image ? 'like your image' : 'for “' + q + '”';
  $('summary').textContent = body.hits.length
    ? 'Results ' + first + '–' + (first + body.hits.length - 1) + ' of ' + (body.totalExact ? '' : 'about ') + body.total +
      ' ' + what + ' (' + body.mode + ', ' + body.tookMs.toFixed(1) + ' ms)'
    : 'No results ' + what + '.';
  if (body.nextCursor) state.cursors[state.page + 1] = body.nextCursor;
  else state.cursors.length = state.page + 1;
  $('pager').hidden = state.page === 0 && !body.nextCursor;
  $('prev').disabled = state.page === 0;
  $('next').disabled = !body.nextCursor;
  $('page-label').textContent = 'Page ' + (state.page + 1);
}

async function preview(h) {
  const dlg = $('preview');
  $('preview-title').textContent = h.name;
  const bodyEl = $('preview-body');
  bodyEl.replaceChildren();
  const meta = $('preview-meta');
  meta.replaceChildren();
  const rows = [['Path', h.path], ['Type', h.type], ['Size', fmtSize(h.size)], ['Modified', h.modified]];
  if (h.title) rows.push(['Title', h.title]);
  if (h.author) rows.push(['Author', h.author]);
  if (h.created) rows.push(['Created', h.created]);
  if (h.saved) rows.push(['Saved', h.saved]);
  if (h.taken) rows.push(['Taken', h.taken]);
  if (h.camera) rows.push(['Camera', h.camera]);
  if (h.gps) rows.push(['Location', h.gps.lat.toFixed(5) + ', ' + h.gps.lon.toFixed(5)]);
  rows.push(['Scores', scoreText(h)]);
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    meta.append(dt, dd);
  }
  const open = document.createElement('button');
  open.type = 'button';
  open.textContent = 'Download';
  open.addEventListener('click', async () => {
    try {
      const a = document.createElement('a');
      a.href = await blobUrl('/documents/' + h.id + '/content');
      a.download = h.name;
      a.click();
    } catch (e) { showError(e.message); }
  });
  bodyEl.appendChild(open);
  dlg.showModal();
  try {
    if (h.type.startsWith('image/')) {
      const img = document.createElement('img');
      img.alt = h.name;
      img.className = 'preview-image';
      img.src = await blobUrl(h.thumbnailUrl || '/documents/' + h.id + '/content');
      bodyEl.prepend(img);
    } else if (h.type.startsWith('text/') || h.type === 'application/json') {
      const res = await api('/documents/' + h.id + '/content');
      const pre = document.createElement('pre');
      pre.textContent = (await res.text()).slice(0, 20000);
      bodyEl.prepend(pre);
    }
  } catch (e) {
    const p = document.createElement('p');
    p.textContent = 'No preview: ' + e.message;
    bodyEl.prepend(p);
  }
}

function setImage(file) {
  if (!file || !file.type.startsWith('image/')) { showError('That is not an image.'); return; }
  if (state.config && file.size > state.config.maxImageBytes) { showError('The image is larger than the server accepts.'); return; }
  state.image = file;
  state.similarTo = null;
  $('image-preview').src = URL.createObjectURL(file);
  $('image-name').textContent = file.name || 'pasted image';
  $('image-chosen').hidden = false;
  $('image-hint').hidden = true;
  search(true);
}

function clearImage(rerun) {
  state.image = null;
  $('image-input').value = '';
  $('image-chosen').hidden = true;
  $('image-hint').hidden = false;
  if (rerun) search(true);
}

function applyConfig(cfg) {
  state.config = cfg;
  document.body.classList.toggle('no-vector', !cfg.vectorSearch);
  document.body.classList.toggle('no-image', !cfg.imageSearch);
  for (const el of document.querySelectorAll('.vector-only')) el.hidden = !cfg.vectorSearch || (el.id === 'image-zone' && !cfg.imageSearch);
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
    search(true);
  });
  for (const id of ['f-type', 'f-mode', 'f-limit', 'f-after', 'f-before']) $(id).addEventListener('change', () => search(true));
  $('prev').addEventListener('click', () => { if (state.page > 0) { state.page--; search(false); } });
  $('next').addEventListener('click', () => { if (state.cursors[state.page + 1]) { state.page++; search(false); } });
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
    search(true);
  });
  $('preview-close').addEventListener('click', () => $('preview').close());
  const q = new URLSearchParams(location.search).get('q');
  if (q) { $('q').value = q; search(true); }
}

document.addEventListener('DOMContentLoaded', init);
