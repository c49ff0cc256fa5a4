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
  if (!res.ok) throw new Error(data?.detail ?? `HTTP ${res.status}`);
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
  for (const id of ['intro', 'sandboxes-section', 'tasks-section']) $(id).hidden = true;
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

async function load() {
  if (!token()) {
    $('error').textContent = t('candidate.noLink');
    return;
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
    if (!waiting) {
      renderSandboxes(s.sandboxes);
      const list = await api('GET', `/candidate/tasks?lang=${lang}`);
      renderTasks(list.tasks, list.submissions);
    }
    tick(); // last: past the deadline, it replaces all of the above with the ended view
  } catch (err) {
    // The link stops working at the deadline: a page reopened after it says the assessment ended.
    const known = Number(sessionStorage.getItem(DEADLINE));
    if (known && Date.now() >= known) showEnded();
    else $('error').textContent = err.message;
  }
}

$('start').addEventListener('click', async () => {
  try {
    const r = await api('POST', '/candidate/start');
    sessionStorage.setItem('epreuve-token', r.token);
    await load();
  } catch (err) {
    $('error').textContent = err.message;
  }
});
setInterval(tick, 1000);
load();
