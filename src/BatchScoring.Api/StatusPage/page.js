// Status page: polls the JSON API with the key kept in sessionStorage. Values go into the DOM as text, never as HTML;
// only the drift fragment is HTML, drawn and encoded by the server.
'use strict';
(() => {
  const keyName = 'batchscoring.apiKey';
  const params = new URLSearchParams(location.search);
  if (params.has('key')) {
    sessionStorage.setItem(keyName, params.get('key'));
    params.delete('key');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }
  const refreshMs = Math.max(200, Number(params.get('refresh')) || 2000);
  let selectedJob = null;
  let selectedDriftModel = null;
  let tick = 0;

  const $ = id => document.getElementById(id);

  class NeedsKey extends Error {}

  async function call(path, asText) {
    const key = sessionStorage.getItem(keyName);
    const response = await fetch(path, { headers: key ? { 'X-Api-Key': key } : {}, cache: 'no-store' });
    if (response.status === 401 || response.status === 403) {
      throw new NeedsKey(response.status === 403 ? 'This key lacks the read scope.' : (key ? 'The key was refused.' : ''));
    }
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch { /* not a problem document */ }
      throw new Error(`${path}: ${response.status} ${detail}`);
    }
    return asText ? response.text() : response.json();
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text ?? '';
    if (className) td.className = className;
    return td;
  }

  function fill(tbody, items, render) {
    const rows = items.map(item => { const tr = document.createElement('tr'); render(tr, item); return tr; });
    tbody.replaceChildren(...rows);
  }

  const number = n => (n ?? 0).toLocaleString('en-US');
  const time = t => t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : '';

  function eta(seconds) {
    if (seconds == null) return '';
    const s = Math.round(seconds);
    return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${(s / 3600).toFixed(1)} h`;
  }

  function progress(job) {
    if (job.totalRows > 0) return Math.min(100, 100 * (job.scoredRows + job.failedRows) / job.totalRows);
    return job.chunksTotal > 0 ? 100 * job.chunksDone / job.chunksTotal : (job.state === 'succeeded' ? 100 : 0);
  }

  function reason(job) {
    if (job.error) return job.error;
    const top = (job.failureSummary || [])[0];
    return top ? `${top.reason} (${number(top.count)})` : '';
  }

  async function loadJobs() {
    const jobs = await call('/api/jobs?limit=50');
    // The list carries no failure reasons: ask for them for the few jobs with failed rows and no error.
    await Promise.all(jobs.filter(j => j.failedRows > 0 && !j.error).slice(0, 10).map(async j => {
      j.failureSummary = (await call(`/api/jobs/${encodeURIComponent(j.id)}`)).failureSummary;
    }));
    fill($('jobs').tBodies[0], jobs, (tr, job) => {
      const pct = progress(job);
      tr.dataset.jobId = job.id;
      tr.dataset.state = job.state;
      tr.dataset.progress = pct.toFixed(1);
      tr.className = 'state-' + job.state;
      const open = document.createElement('button');
      open.className = 'link open-job';
      open.textContent = job.id.slice(0, 8);
      open.title = job.id;
      open.addEventListener('click', () => { selectedJob = job.id; loadJobDetail().catch(report); });
      cell(tr, '').append(open);
      cell(tr, `${job.model} v${job.modelVersion}`);
      cell(tr, job.state, 'state');
      const bar = document.createElement('span');
      bar.className = 'bar';
      const inner = document.createElement('span');
      inner.className = 'fill';
      inner.style.display = 'block';
      inner.style.width = pct.toFixed(1) + '%';
      bar.append(inner);
      const td = cell(tr, '', 'progress');
      td.append(bar, ` ${pct.toFixed(0)}% · ${number(job.scoredRows + job.failedRows)} / ${number(job.totalRows)} rows · ${job.chunksDone}/${job.chunksTotal} chunks`);
      cell(tr, job.rowsPerSecond == null ? '' : number(Math.round(job.rowsPerSecond)), 'rate');
      cell(tr, eta(job.etaSeconds), 'eta');
      cell(tr, number(job.failedRows), 'failed');
      cell(tr, reason(job), 'reason');
      cell(tr, time(job.createdAt));
    });
  }

  async function loadJobDetail() {
    if (!selectedJob) return;
    const id = encodeURIComponent(selectedJob);
    const [chunks, failed] = await Promise.all([call(`/api/jobs/${id}/chunks`), call(`/api/jobs/${id}/failed-rows?limit=100`)]);
    $('job-detail').hidden = false;
    $('job-detail-id').textContent = selectedJob;
    fill($('chunks').tBodies[0], chunks, (tr, c) => {
      tr.dataset.state = c.state;
      cell(tr, c.index); cell(tr, c.state); cell(tr, number(c.rowCount)); cell(tr, number(c.scoredRows)); cell(tr, number(c.failedRows));
      cell(tr, c.attempts); cell(tr, c.worker); cell(tr, c.error, 'error');
    });
    fill($('failed-rows').tBodies[0], failed, (tr, r) => {
      cell(tr, r.chunk); cell(tr, r.rowNumber); cell(tr, r.rowKey); cell(tr, r.column); cell(tr, r.reason);
    });
  }

  async function loadModels() {
    const versions = await call('/api/models');
    const byName = new Map();
    for (const v of versions) {
      if (!byName.has(v.name)) byName.set(v.name, []);
      byName.get(v.name).push(v);
    }
    const blocks = [];
    for (const [name, list] of byName) {
      const block = document.createElement('div');
      block.className = 'model';
      block.dataset.model = name;
      const title = document.createElement('h3');
      title.textContent = name + ' ';
      const drift = document.createElement('button');
      drift.className = 'link open-drift';
      drift.textContent = 'drift reports';
      drift.addEventListener('click', () => { selectedDriftModel = name; loadDrift().catch(report); });
      title.append(drift);
      const table = document.createElement('table');
      table.createTHead().innerHTML = '<tr><th>version</th><th>aliases</th><th>sha-256</th><th>registered</th><th>archived</th></tr>';
      fill(table.createTBody(), list.sort((a, b) => b.version - a.version), (tr, v) => {
        cell(tr, 'v' + v.version); cell(tr, (v.aliases || []).join(', ')); cell(tr, (v.sha256 || '').slice(0, 12));
        cell(tr, time(v.createdAt)); cell(tr, time(v.archivedAt));
      });
      block.append(title, table);
      const aliases = [...new Set(list.flatMap(v => v.aliases || []))];
      for (const alias of aliases) {
        const history = await call(`/api/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}/history`);
        const p = document.createElement('div');
        p.className = 'alias-history';
        p.textContent = `${alias}: ` + history.map(h =>
          `${time(h.changedAt)} → v${h.version}${h.previousVersion == null ? ' (created)' : ` (was v${h.previousVersion})`}${h.changedBy ? ' by ' + h.changedBy : ''}${h.forced ? ', forced' : ''}`).join('; ');
        block.append(p);
      }
      blocks.push(block);
    }
    $('models').replaceChildren(...blocks);
    if (blocks.length === 0) $('models').textContent = 'No models registered.';
  }

  // Without a running scheduler nothing re-sends lost chunk messages or fires schedules, and without a worker nothing
  // is scored: say so above the jobs.
  async function loadService() {
    const service = await call('/api/service');
    const ago = t => `${Math.max(0, Math.round((new Date(service.checkedAt) - new Date(t)) / 1000))} s ago`;
    const alive = service.schedulers.filter(s => s.alive);
    const schedulers = $('schedulers');
    schedulers.dataset.schedulers = String(alive.length);
    if (alive.length === 0) {
      schedulers.className = 'warning';
      schedulers.textContent = 'No scheduler is running: lost chunk messages are not re-sent, abandoned jobs are not finished, '
        + 'and schedules and drift audits do not fire. Start a process with the scheduler role (batchscore serve --roles scheduler).'
        + (service.reconcilerFiredAt ? ` The reconciler last fired ${ago(service.reconcilerFiredAt)}.` : '');
    } else {
      schedulers.className = 'muted';
      schedulers.textContent = `Schedulers: ${alive.length} running (${alive.map(s => s.instance).join(', ')}); `
        + (service.reconcilerFiredAt ? `reconciler last fired ${ago(service.reconcilerFiredAt)}.` : 'the reconciler has not fired yet.');
    }

    const workers = $('workers');
    const queue = service.chunkQueue;
    if (!queue) {
      delete workers.dataset.consumers;
      workers.className = 'warning';
      workers.textContent = service.chunkQueueError || 'RabbitMQ could not be asked about the chunk queue.';
      return;
    }
    workers.dataset.consumers = String(queue.consumers);
    workers.dataset.ready = String(queue.readyMessages);
    const waiting = `${number(queue.readyMessages)} chunk message${queue.readyMessages === 1 ? '' : 's'} waiting in ${queue.queue}`;
    if (queue.consumers === 0) {
      workers.className = queue.readyMessages > 0 ? 'warning' : 'muted';
      workers.textContent = `No worker consumes ${queue.queue}: ${waiting}, none is scored. `
        + 'Start a process with the worker role (batchscore serve --roles worker).';
    } else {
      workers.className = 'muted';
      workers.textContent = `Workers: ${queue.consumers} consuming; ${waiting}.`;
    }
  }

  async function loadDrift() {
    if (!selectedDriftModel) return;
    const html = await call(`/status/models/${encodeURIComponent(selectedDriftModel)}/drift?limit=5`, true);
    const target = $('drift');
    target.className = '';
    target.dataset.model = selectedDriftModel;
    target.innerHTML = html; // server-rendered by DriftReportHtml, every value encoded
  }

  function report(error) {
    if (error instanceof NeedsKey) {
      $('auth').hidden = false;
      $('auth-message').textContent = error.message;
      return;
    }
    $('load-error').textContent = String(error.message || error);
  }

  let busy = false;
  async function refresh() {
    if (busy) return; // a slow answer must not stack polls
    busy = true;
    try {
      await loadJobs();
      await loadJobDetail();
      if (tick % 10 === 0) { await loadModels(); await loadDrift(); }
      if (tick % 5 === 0) await loadService();
      tick++;
      $('auth').hidden = true;
      $('load-error').textContent = '';
      $('updated').textContent = new Date().toLocaleTimeString();
    } catch (error) {
      report(error);
    } finally {
      busy = false;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('key-form').addEventListener('submit', event => {
      event.preventDefault();
      sessionStorage.setItem(keyName, $('key-input').value);
      $('key-input').value = '';
      tick = 0;
      refresh();
    });
    refresh();
    setInterval(refresh, refreshMs);
  });
})();
