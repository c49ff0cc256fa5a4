// The candidate page: no framework, no third-party code. The link token arrives in the URL
// fragment (never sent to servers), is kept in sessionStorage, and is removed from the address bar.
import { format, lang, t, translatePage } from './i18n.js';

const $ = (id) => document.getElementById(id);
translatePage();

function token() {
  const m = /token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('epreuve-token', m[1]);
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('epreuve-token');
}

/** An API error: the problem's detail, and for a console run its `reason` and `position`. */
class ApiError extends Error {
  constructor(problem, status) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.problem = problem ?? {};
  }
}

async function api(method, path, body) {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token()}`,
      'accept-language': lang,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new ApiError(data, res.status);
  return data;
}

const escapeHtml = (s) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
/** A little Markdown: paragraphs, `code`, **bold**; everything escaped first. */
const markdown = (s) =>
  escapeHtml(s)
    .split(/\n{2,}/)
    .map(
      (p) =>
        `<p>${p
          .replace(/`([^`]+)`/g, '<code>$1</code>')
          .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
          .replace(/\n/g, '<br>')}</p>`,
    )
    .join('');

/**
 * What this browser submitted, kept for the page shown after the end (the link stops working at
 * the deadline, so the page cannot ask the API then).
 */
const SUBMITTED = 'epreuve-submitted';
const DEADLINE = 'epreuve-deadline';
const submitted = () => JSON.parse(sessionStorage.getItem(SUBMITTED) ?? '[]');
function remember(task, r) {
  const all = submitted();
  all.push({ task: task.title, at: Date.now(), graded: r.graded, pass: r.pass, points: r.points });
  sessionStorage.setItem(SUBMITTED, JSON.stringify(all.slice(-200)));
}

/** Minutes left at which the page warns, once each. */
const WARN_AT = [15, 5];
let deadline = null;
let ended = false;
function tick() {
  if (!deadline) return;
  const left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  $('countdown').textContent = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  const warn = WARN_AT.filter((w) => left > 0 && left <= w * 60).at(-1);
  $('warning').hidden = warn === undefined;
  if (warn !== undefined) $('warning').textContent = t('candidate.warning', { minutes: warn });
  if (left === 0) showEnded();
}

/** After the deadline: no more connection details or answer boxes; what was submitted from here. */
function showEnded() {
  if (ended) return;
  ended = true;
  $('warning').hidden = true;
  for (const id of ['intro', 'sandboxes-section', 'console-section', 'tasks-section']) $(id).hidden = true;
  $('ended-section').hidden = false;
  const items = submitted();
  $('submissions').replaceChildren(
    ...(items.length
      ? items.map((s) => {
          const li = document.createElement('li');
          const verdict = s.graded
            ? t(s.pass ? 'candidate.passed' : 'candidate.notYet')
            : t('candidate.toReview');
          li.textContent = `${s.task} — ${format.dateTime(s.at)} — ${verdict}`;
          return li;
        })
      : [Object.assign(document.createElement('li'), { textContent: t('candidate.noSubmissions') })]),
  );
}

function copyButton(text, label) {
  const b = document.createElement('button');
  b.className = 'secondary';
  b.textContent = t('candidate.copy', { label });
  b.addEventListener('click', async () => {
    await navigator.clipboard?.writeText(text);
    b.textContent = t('candidate.copied');
    setTimeout(() => (b.textContent = t('candidate.copy', { label })), 1500);
  });
  return b;
}

function renderSandboxes(sandboxes) {
  const box = $('sandboxes');
  box.replaceChildren();
  for (const s of sandboxes) {
    const div = document.createElement('div');
    div.className = 'panel';
    div.innerHTML = `<h3>${escapeHtml(s.name)} <span class="muted">(${escapeHtml(s.kind)}${s.ready ? '' : `, ${t('candidate.starting')}`})</span></h3>`;
    for (const [label, text] of Object.entries(s.snippets ?? {})) {
      if (label === 'url') continue;
      const pre = document.createElement('pre');
      pre.textContent = text;
      pre.setAttribute('aria-label', t('candidate.commandFor', { label, sandbox: s.name }));
      div.append(pre, copyButton(text, label));
    }
    box.append(div);
  }
}

/** Submissions left across tasks (the template's grading.maxSubmissions); every task's count obeys it. */
const submissions = { used: 0, max: Number.POSITIVE_INFINITY };
const attemptCounters = [];

function renderTasks(tasks, total) {
  if (total) Object.assign(submissions, total);
  attemptCounters.length = 0;
  const box = $('tasks');
  box.replaceChildren();
  for (const task of tasks) {
    const art = document.createElement('article');
    art.className = 'panel';
    art.dataset.task = task.id;
    const id = `answer-${task.id}`;
    const kind = t(
      `candidate.kind.${task.answer === 'pipeline' || task.answer === 'sql' ? task.answer : 'text'}`,
    );
    // A check task has no answer to type: the checks read what the candidate built in `work`.
    const checks = task.answer === 'none';
    const input = checks
      ? `<p class="muted">${escapeHtml(t('candidate.checksNote'))}</p>`
      : `<label for="${id}">${escapeHtml(t('candidate.yourAnswer', { kind }))}</label>
      <textarea id="${id}" spellcheck="false"></textarea>`;
    art.innerHTML = `<h3>${escapeHtml(task.title)} <span class="muted">(${t('candidate.points', { points: format.number(task.points) })})</span></h3>${markdown(task.prompt)}
      ${input}
      <div class="row"><button data-submit="${escapeHtml(task.id)}">${t(checks ? 'candidate.runChecks' : 'candidate.submit')}</button>
        <span class="muted attempts" data-attempts="${escapeHtml(task.id)}"></span></div>
      <p class="result" aria-live="polite"></p>`;
    let used = task.attempts.used;
    const attempts = art.querySelector('.attempts');
    const showAttempts = () => {
      const overall = Math.max(0, submissions.max - submissions.used);
      const left = Math.min(Math.max(0, task.attempts.max - used), overall);
      attempts.textContent =
        overall < task.attempts.max - used
          ? t('candidate.attemptsLeftOverall', { left, max: task.attempts.max, overall })
          : t('candidate.attemptsLeft', { left, max: task.attempts.max });
      art.querySelector('button').disabled = left === 0;
    };
    attemptCounters.push(showAttempts);
    showAttempts();
    art.querySelector('button').addEventListener('click', async (ev) => {
      const button = ev.currentTarget;
      const result = art.querySelector('.result');
      button.disabled = true;
      result.textContent = t('candidate.grading');
      try {
        const r = await api(
          'POST',
          `/candidate/tasks/${encodeURIComponent(task.id)}/submissions`,
          checks ? undefined : { answer: art.querySelector('textarea').value },
        );
        used += 1;
        submissions.used += 1;
        remember(task, r);
        result.className = `result ${r.graded ? (r.pass ? 'pass' : 'fail') : ''}`;
        result.textContent = r.graded
          ? `${t(r.pass ? 'candidate.passed' : 'candidate.notYet')} — ${r.explanation}`
          : r.explanation;
      } catch (err) {
        result.className = 'result fail';
        result.textContent = err.message;
      } finally {
        button.disabled = false;
        for (const show of attemptCounters) show();
      }
    });
    box.append(art);
  }
}

/** Renders the session; says whether the candidate may work (started, or no Start needed). */
async function load() {
  if (!token()) {
    $('error').textContent = t('candidate.noLink');
    return false;
  }
  try {
    const s = await api('GET', `/candidate/session?lang=${lang}`);
    $('title').textContent = s.title;
    $('greeting').textContent = t('candidate.welcome', { name: s.candidate });
    $('description').innerHTML = s.description ? markdown(s.description) : '';
    $('intro').hidden = false;
    deadline = s.expiresAt ? Date.parse(s.expiresAt) : null;
    if (deadline) sessionStorage.setItem(DEADLINE, String(deadline));
    const waiting = s.startPolicy === 'OnFirstAccess' && !s.started;
    $('start-panel').hidden = !waiting;
    $('sandboxes-section').hidden = waiting;
    $('tasks-section').hidden = waiting;
    $('console-section').hidden = waiting;
    if (!waiting) {
      renderSandboxes(s.sandboxes);
      renderConsoles(s.sandboxes);
      const list = await api('GET', `/candidate/tasks?lang=${lang}`);
      renderTasks(list.tasks, list.submissions);
    }
    tick(); // last: past the deadline, it replaces all of the above with the ended view
    return !waiting;
  } catch (err) {
    // The link stops working at the deadline: a page reopened after it says the assessment ended.
    const known = Number(sessionStorage.getItem(DEADLINE));
    if (known && Date.now() >= known) showEnded();
    else $('error').textContent = err.message;
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The console (issue 17): an editor per database sandbox whose Run (Ctrl/Cmd+Enter) sends the text
// to POST /candidate/console — run by the grader as the candidate, never graded — and shows the
// rows in a table, or the error with the place it points at. The last runs are kept in
// sessionStorage (this tab only, like the link) and can be put back in the editor.

const HISTORY = 'epreuve-console-history';
/** Runs kept per sandbox. */
const HISTORY_MAX = 20;
// Not `history`: that is the page's own (token() uses history.replaceState).
const savedRuns = () => JSON.parse(sessionStorage.getItem(HISTORY) ?? '{}');
function remembered(sandbox) {
  return savedRuns()[sandbox] ?? [];
}
function rememberRun(sandbox, entry) {
  const all = savedRuns();
  const runs = (all[sandbox] ?? []).filter((r) => r.text !== entry.text || r.collection !== entry.collection);
  runs.unshift(entry);
  all[sandbox] = runs.slice(0, HISTORY_MAX);
  sessionStorage.setItem(HISTORY, JSON.stringify(all));
}

/** A cell as text: NULL said so, objects (JSON, documents) as compact JSON. */
function cellText(v) {
  if (v === null || v === undefined) return t('console.null');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Line and column (1-based) of a 1-based character position in `text`. */
function lineColumn(text, position) {
  const before = text.slice(0, position - 1).split('\n');
  return { line: before.length, column: before.at(-1).length + 1 };
}

/** The line the error points at, with the character marked and a caret under it. */
function errorExcerpt(text, position) {
  const { line, column } = lineColumn(text, position);
  const source = text.split('\n')[line - 1] ?? '';
  const pre = document.createElement('pre');
  pre.className = 'console-excerpt';
  pre.setAttribute('aria-hidden', 'true'); // the status says it in words: line and column
  const mark = document.createElement('mark');
  mark.textContent = source.slice(column - 1, column) || ' ';
  pre.append(source.slice(0, column - 1), mark, `${source.slice(column)}\n${' '.repeat(column - 1)}^`);
  return pre;
}

function resultTable(sandbox, r) {
  const table = document.createElement('table');
  const caption = document.createElement('caption');
  caption.textContent = t('console.caption', { sandbox });
  const head = document.createElement('tr');
  for (const c of r.columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = c;
    head.append(th);
  }
  const thead = document.createElement('thead');
  thead.append(head);
  const tbody = document.createElement('tbody');
  for (const row of r.rows) {
    const tr = document.createElement('tr');
    for (const v of row) {
      const td = document.createElement('td');
      td.textContent = cellText(v);
      if (v === null || v === undefined) td.className = 'muted';
      tr.append(td);
    }
    tbody.append(tr);
  }
  table.append(caption, thead, tbody);
  return table;
}

function statusText(r) {
  const ms = format.number(r.durationMs);
  let text;
  // A pipeline that matched nothing has no columns, but it is still rows: none.
  if (r.columns.length > 0 || r.command === 'aggregate')
    text =
      r.rowCount === 1
        ? t('console.oneRow', { ms })
        : t('console.rows', { rows: format.number(r.rowCount), ms });
  else if (/^(INSERT|UPDATE|DELETE|MERGE|COPY|SELECT)/.test(r.command))
    text = t('console.changed', { command: r.command, rows: format.number(r.rowCount), ms });
  else text = t('console.done', { command: r.command, ms });
  return r.truncated ? `${text} — ${t('console.truncated', { rows: format.number(r.rows.length) })}` : text;
}

function renderConsoles(sandboxes) {
  const box = $('consoles');
  box.replaceChildren();
  const databases = sandboxes.filter((s) => s.kind === 'postgres' || s.kind === 'mongo');
  $('console-section').hidden = databases.length === 0;
  for (const s of databases) box.append(consolePanel(s));
}

function consolePanel(s) {
  const mongo = s.kind === 'mongo';
  const id = `console-${s.name}`;
  const panel = document.createElement('div');
  panel.className = 'panel console';
  panel.dataset.console = s.name;
  panel.innerHTML = `<h3>${escapeHtml(s.name)} <span class="muted">(${escapeHtml(s.kind)})</span></h3>
    ${mongo ? `<label for="${id}-collection">${escapeHtml(t('console.collection'))}</label><input id="${id}-collection" class="collection" spellcheck="false" autocomplete="off">` : ''}
    <label for="${id}">${escapeHtml(t(mongo ? 'console.editor.pipeline' : 'console.editor.sql', { sandbox: s.name }))}</label>
    <textarea id="${id}" class="editor" spellcheck="false" aria-describedby="console-keys" placeholder="${mongo ? '[{&quot;$match&quot;: {}}]' : 'SELECT …'}"></textarea>
    <div class="row"><button type="button" class="run" aria-label="${escapeHtml(t('console.runLabel', { sandbox: s.name }))}">${escapeHtml(t('console.run'))}</button>
      <span class="muted console-status" role="status" aria-live="polite"></span></div>
    <div class="console-error" role="alert"></div>
    <div class="grid" role="region" tabindex="0" aria-label="${escapeHtml(t('console.results', { sandbox: s.name }))}" hidden></div>
    <details class="history"><summary></summary><p class="muted">${escapeHtml(t('console.historyNote'))}</p><ol></ol></details>`;
  const editor = panel.querySelector('textarea');
  const collection = panel.querySelector('.collection');
  const button = panel.querySelector('button.run');
  const status = panel.querySelector('.console-status');
  const error = panel.querySelector('.console-error');
  const grid = panel.querySelector('.grid');
  let browsing = -1; // where Alt+↑/↓ is in the history

  const restore = (entry) => {
    editor.value = entry.text;
    if (collection) collection.value = entry.collection ?? '';
    editor.focus();
  };
  const showHistory = () => {
    const runs = remembered(s.name);
    panel.querySelector('summary').textContent = t('console.history', { count: runs.length });
    const list = panel.querySelector('.history ol');
    list.replaceChildren(
      ...(runs.length
        ? runs.map((entry) => {
            const li = document.createElement('li');
            const b = document.createElement('button');
            b.type = 'button';
            b.className = 'secondary';
            const preview = entry.text.replace(/\s+/g, ' ').trim().slice(0, 80);
            b.textContent = `${entry.collection ? `${entry.collection}: ` : ''}${preview}`;
            b.setAttribute('aria-label', t('console.restore', { text: preview }));
            const when = document.createElement('span');
            when.className = 'muted';
            when.textContent = ` ${format.time(entry.at)}${entry.ok ? '' : ' ✗'}`;
            b.addEventListener('click', () => restore(entry));
            li.append(b, when);
            return li;
          })
        : [Object.assign(document.createElement('li'), { textContent: t('console.noHistory') })]),
    );
  };

  const run = async () => {
    const text = editor.value;
    button.disabled = true;
    status.textContent = t('console.running');
    error.replaceChildren();
    const body = mongo
      ? { sandbox: s.name, pipeline: text, collection: collection.value.trim() }
      : { sandbox: s.name, query: text };
    let ok = false;
    try {
      const r = await api('POST', '/candidate/console', body);
      ok = true;
      status.textContent = statusText(r);
      // PostgreSQL's warnings (a GRANT that granted nothing…), as it wrote them.
      for (const notice of r.notices ?? []) {
        const p = document.createElement('p');
        p.className = 'muted notice';
        p.textContent = notice;
        error.append(p);
      }
      grid.replaceChildren(resultTable(s.name, r));
      grid.hidden = r.columns.length === 0;
    } catch (err) {
      const position = err.problem?.position;
      const message = err.message;
      if (position) {
        const { line, column } = lineColumn(text, position);
        status.textContent = t('console.errorAt', { line, column, message });
        error.replaceChildren(errorExcerpt(text, position));
        // The caret to the place, so the candidate types the fix there.
        editor.focus();
        editor.setSelectionRange(position - 1, position);
      } else {
        status.textContent = t('console.error', { message });
      }
      grid.hidden = true;
    } finally {
      button.disabled = false;
      rememberRun(s.name, { text, collection: collection?.value.trim(), at: Date.now(), ok });
      browsing = -1;
      showHistory();
    }
  };

  button.addEventListener('click', run);
  const keys = (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      if (!button.disabled) run();
    } else if (ev.altKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') && ev.currentTarget === editor) {
      const runs = remembered(s.name);
      if (runs.length === 0) return;
      ev.preventDefault();
      browsing = Math.max(0, Math.min(runs.length - 1, browsing + (ev.key === 'ArrowUp' ? 1 : -1)));
      restore(runs[browsing]);
    }
  };
  editor.addEventListener('keydown', keys);
  collection?.addEventListener('keydown', keys);
  showHistory();
  return panel;
}

$('start').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/candidate/start');
    sessionStorage.setItem('epreuve-token', r.token);
    // The API reads sessions from its cache, which sees the Start a moment after it was written
    // (longer on a busy cluster, or on another API replica): until it does, the session still says
    // "not started", so read again rather than show the Start button back.
    for (let i = 0; i < 40 && !(await load()); i++) await new Promise((ok) => setTimeout(ok, 250));
  } catch (err) {
    $('error').textContent = err.message;
  }
});
setInterval(tick, 1000);
load();
