// The candidate page: no framework, no third-party code. The link token arrives in the URL
// fragment (never sent to servers), is kept in sessionStorage, and is removed from the address bar.
const $ = (id) => document.getElementById(id);
const lang = (navigator.language || 'en').startsWith('fr') ? 'fr' : 'en';

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
    headers: { authorization: `Bearer ${token()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
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

let deadline = null;
function tick() {
  if (!deadline) return;
  const left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  $('countdown').textContent = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

function copyButton(text, label) {
  const b = document.createElement('button');
  b.className = 'secondary';
  b.textContent = `Copy ${label}`;
  b.addEventListener('click', async () => {
    await navigator.clipboard?.writeText(text);
    b.textContent = 'Copied';
    setTimeout(() => (b.textContent = `Copy ${label}`), 1500);
  });
  return b;
}

function renderSandboxes(sandboxes) {
  const box = $('sandboxes');
  box.replaceChildren();
  for (const s of sandboxes) {
    const div = document.createElement('div');
    div.className = 'panel';
    div.innerHTML = `<h3>${escapeHtml(s.name)} <span class="muted">(${escapeHtml(s.kind)}${s.ready ? '' : ', starting…'})</span></h3>`;
    for (const [label, text] of Object.entries(s.snippets ?? {})) {
      if (label === 'url') continue;
      const pre = document.createElement('pre');
      pre.textContent = text;
      pre.setAttribute('aria-label', `${label} command for ${s.name}`);
      div.append(pre, copyButton(text, label));
    }
    box.append(div);
  }
}

function renderTasks(tasks) {
  const box = $('tasks');
  box.replaceChildren();
  for (const t of tasks) {
    const art = document.createElement('article');
    art.className = 'panel';
    art.dataset.task = t.id;
    const id = `answer-${t.id}`;
    art.innerHTML = `<h3>${escapeHtml(t.title)} <span class="muted">(${t.points} pt)</span></h3>${markdown(t.prompt)}
      <label for="${id}">Your answer (${t.answer === 'pipeline' ? 'JSON aggregation pipeline' : t.answer === 'sql' ? 'SQL' : 'text'})</label>
      <textarea id="${id}" spellcheck="false"></textarea>
      <div class="row"><button data-submit="${escapeHtml(t.id)}">Submit</button>
        <span class="muted attempts" data-attempts="${escapeHtml(t.id)}"></span></div>
      <p class="result" aria-live="polite"></p>`;
    let used = t.attempts.used;
    const attempts = art.querySelector('.attempts');
    const showAttempts = () => {
      const left = Math.max(0, t.attempts.max - used);
      attempts.textContent = `${left} of ${t.attempts.max} attempts left`;
      art.querySelector('button').disabled = left === 0;
    };
    showAttempts();
    art.querySelector('button').addEventListener('click', async (ev) => {
      const button = ev.currentTarget;
      const result = art.querySelector('.result');
      button.disabled = true;
      result.textContent = 'Grading…';
      try {
        const r = await api('POST', `/candidate/tasks/${encodeURIComponent(t.id)}/submissions`, {
          answer: art.querySelector('textarea').value,
        });
        used += 1;
        result.className = `result ${r.graded ? (r.pass ? 'pass' : 'fail') : ''}`;
        result.textContent = r.graded ? `${r.pass ? 'Passed' : 'Not yet'} — ${r.explanation}` : r.explanation;
      } catch (err) {
        result.className = 'result fail';
        result.textContent = err.message;
      } finally {
        button.disabled = false;
        showAttempts();
      }
    });
    box.append(art);
  }
}

async function load() {
  if (!token()) {
    $('error').textContent = 'Open the link you were sent: it carries your access.';
    return;
  }
  try {
    const s = await api('GET', `/candidate/session?lang=${lang}`);
    $('title').textContent = s.title;
    $('greeting').textContent = `Welcome, ${s.candidate}.`;
    $('description').innerHTML = s.description ? markdown(s.description) : '';
    $('intro').hidden = false;
    deadline = s.expiresAt ? Date.parse(s.expiresAt) : null;
    tick();
    const waiting = s.startPolicy === 'OnFirstAccess' && !s.started;
    $('start-panel').hidden = !waiting;
    $('sandboxes-section').hidden = waiting;
    $('tasks-section').hidden = waiting;
    if (!waiting) {
      renderSandboxes(s.sandboxes);
      renderTasks((await api('GET', `/candidate/tasks?lang=${lang}`)).tasks);
    }
  } catch (err) {
    $('error').textContent = err.message;
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
