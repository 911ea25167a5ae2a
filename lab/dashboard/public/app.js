// The kexec lab dashboard: reads /api/events (Server-Sent Events) and draws the tables.
// Plain browser JavaScript, no framework, no build step: read it as part of the lesson.
'use strict';

const $ = (sel) => document.querySelector(sel);

/** Builds an element: el('td', { class: 'num' }, 'text', childElement). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return e;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

/** The hop's badge: apiserver, kubelet-sim node-1, cri-shim, audit. */
function hopBadge(hop) {
  const kind = hop.split(' ')[0];
  return el('span', { class: `hop hop-${kind}` }, hop);
}

function drawState(state) {
  fill(
    $('#nodes tbody'),
    state.nodes.map((n) =>
      el(
        'tr',
        { 'data-node': n.name },
        el('td', {}, n.name),
        el('td', { class: n.ready ? 'ok' : 'bad' }, n.ready ? 'Ready' : 'NotReady'),
        el('td', { class: 'mono' }, `${n.address ?? '?'}:${n.kubeletPort ?? '?'}`),
        el('td', {}, n.runtime ?? ''),
        el('td', { class: n.fault === 'none' ? '' : 'fault-on', 'data-fault': n.fault }, n.fault),
      ),
    ),
  );
  fill(
    $('#pods tbody'),
    state.pods.map((p) =>
      el(
        'tr',
        {},
        el('td', {}, `${p.namespace}/${p.name}`),
        el('td', {}, p.node ?? '—'),
        el('td', { class: `phase-${p.phase}` }, p.phase),
        el('td', { class: 'mono' }, p.podIP ?? ''),
        el('td', {}, p.containers.join(', ')),
      ),
    ),
  );
  const select = $('#fault-node');
  const names = state.nodes.map((n) => n.name);
  if ([...select.options].map((o) => o.value).join() !== names.join()) {
    select.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
  }
  if (document.activeElement !== $('#rate-value') && state.maxConnectionBytesPerSec !== '?') {
    $('#rate-value').value = state.maxConnectionBytesPerSec;
  }
  fill(
    $('#sessions tbody'),
    state.sessions.map((s) =>
      el(
        'tr',
        { 'data-audit-id': s.auditID ?? '', 'data-hop': s.hop },
        el('td', {}, hopBadge(s.hop)),
        el('td', {}, s.kind ?? ''),
        el('td', {}, s.user ?? ''),
        el('td', {}, s.target ?? ''),
        el('td', { class: 'mono' }, s.protocol ?? ''),
        el('td', {}, s.path),
        el('td', { class: 'num', 'data-bytes-up': s.bytesUp }, bytes(s.bytesUp)),
        el('td', { class: 'num', 'data-bytes-down': s.bytesDown }, bytes(s.bytesDown)),
        el('td', { class: 'num' }, `${bytes(s.rateDown)}/s`),
        el('td', { class: 'num' }, `${s.ageSeconds.toFixed(1)} s`),
        el('td', { class: 'mono' }, (s.auditID ?? '').slice(0, 8)),
      ),
    ),
  );
  $('#no-sessions').hidden = state.sessions.length > 0;
  $('#errors').textContent = state.errors.join(' · ');
}

let picked;

function drawRequests(list) {
  fill(
    $('#requests tbody'),
    list.slice(0, 40).map((r) => {
      const row = el(
        'tr',
        { 'data-audit-id': r.auditID, class: r.auditID === picked ? 'picked' : '' },
        el('td', { class: 'mono' }, new Date(r.firstAt).toLocaleTimeString()),
        el('td', {}, r.verb ?? ''),
        el('td', { title: r.what ?? '' }, r.what ?? ''),
        el('td', {}, r.user ?? ''),
        el('td', { class: r.code >= 400 ? 'bad' : '' }, r.code ?? ''),
        el('td', {}, String(r.services.length)),
      );
      row.addEventListener('click', () => showSequence(r.auditID));
      return row;
    }),
  );
}

/** A bar as long as the step's time from the first (set through the CSSOM: the page's CSP allows no inline style). */
function bar(percent) {
  const b = el('div', { class: 'bar' });
  b.style.width = `${percent}%`;
  return b;
}

async function showSequence(auditID) {
  picked = auditID;
  for (const tr of document.querySelectorAll('#requests tbody tr')) {
    tr.classList.toggle('picked', tr.dataset.auditId === auditID);
  }
  const res = await fetch(`/api/requests/${encodeURIComponent(auditID)}`);
  if (!res.ok) return;
  const { summary, steps } = await res.json();
  const t0 = steps.length ? steps[0].at : 0;
  const span = Math.max(1, (steps.at(-1)?.at ?? t0) - t0);
  const items = steps.map((s) => {
    const ms = s.at - t0;
    const fields = s.fields
      ? Object.entries(s.fields)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ')
      : '';
    return el(
      'li',
      {},
      el('span', { class: 't' }, `+${ms.toFixed(1)} ms`),
      el('span', {}, hopBadge(s.service)),
      el('span', {}, s.msg, el('div', { class: 'fields mono' }, fields), bar(Math.max(1, (ms / span) * 100))),
    );
  });
  $('#sequence').replaceChildren(
    el('h3', {}, `${summary.verb ?? ''} ${summary.what ?? ''} `, el('code', {}, auditID)),
    el('ol', { class: 'seq' }, ...items),
  );
}

async function put(path, body) {
  const out = $('#switch-result');
  const res = await fetch(path, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  out.className = res.ok ? '' : 'bad';
  out.textContent = res.ok ? `set: ${answer.value}` : `refused: ${answer.message}`;
}

$('#fault-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void put('/api/flags/fault', { node: $('#fault-node').value, value: $('#fault-mode').value });
});
$('#rate-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void put('/api/flags/max-connection-bytes-per-sec', { value: $('#rate-value').value });
});

const events = new EventSource('/api/events');
events.addEventListener('open', () => {
  $('#live').textContent = 'live';
  $('#live').className = 'badge on';
});
events.addEventListener('error', () => {
  $('#live').textContent = 'reconnecting…';
  $('#live').className = 'badge off';
});
events.addEventListener('state', (e) => drawState(JSON.parse(e.data)));
events.addEventListener('requests', (e) => drawRequests(JSON.parse(e.data)));
fetch('/api/state')
  .then((r) => r.json())
  .then(drawState, () => {});
