// The staff page: list, create, extend, revoke, link, results and interview scoring. No framework.
import { format, lang, t, translatePage } from './i18n.js';

const $ = (id) => document.getElementById(id);
translatePage();
const escapeHtml = (s) =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
let team = sessionStorage.getItem('epreuve-team') ?? '';
let credential = sessionStorage.getItem('epreuve-staff-token') ?? '';

async function api(method, path, body) {
  const res = await fetch(`/api/v1/teams/${encodeURIComponent(team)}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${credential}`,
      'accept-language': lang,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(data?.detail ?? `HTTP ${res.status}`);
  return data;
}

const fail = (err) => {
  $('error').textContent = err.message;
};

async function refresh() {
  try {
    const items = [];
    let cursor = null;
    for (let i = 0; i < 20; i++) {
      const page = await api('GET', `/assessments?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      items.push(...page.items);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    $('rows').replaceChildren(...items.map(row));
    $('updated').textContent = t('staff.updated', { time: format.time(Date.now()) });
    $('error').textContent = '';
  } catch (err) {
    fail(err);
  }
}

function row(a) {
  const tr = document.createElement('tr');
  tr.dataset.name = a.name;
  tr.innerHTML = `<td>${escapeHtml(a.name)}</td><td>${escapeHtml(a.candidate.name)}<br><span class="muted">${escapeHtml(a.candidate.email)}</span></td>
    <td>${escapeHtml(a.template)}</td><td data-phase>${escapeHtml(a.phase)}${a.revoked ? ` ${t('staff.revoked')}` : ''}</td>
    <td>${a.expiresAt ? format.dateTime(a.expiresAt) : `<span class="muted">${t('staff.notStarted')}</span>`}</td><td class="row"></td>`;
  const actions = tr.lastElementChild;
  const action = (label, fn) => {
    const b = document.createElement('button');
    b.className = 'secondary';
    b.textContent = label;
    b.setAttribute('aria-label', `${label} ${a.name}`);
    b.addEventListener('click', () => fn().then(refresh, fail));
    actions.append(b);
  };
  // ---- hibernation (issue 17): when it is deleted, Reopen for the interview, or delete now ----
  if (a.phase === 'Hibernated' && !a.revoked) {
    const note = document.createElement('span');
    note.className = 'muted';
    note.textContent = ` ${t('staff.hibernated', { time: format.dateTime(a.hibernatedUntil) })}${
      a.reopenedUntil ? `; ${t('staff.reopenedUntil', { time: format.dateTime(a.reopenedUntil) })}` : ''
    }`;
    tr.querySelector('[data-phase]').append(note);
    action(t('staff.reopen'), async () => {
      const r = await api('POST', `/assessments/${a.name}/reopen`, {});
      const lines = r.sandboxes.map(
        (s) => `${s.portForward}\n  ${s.kind} ${s.username}:${s.password}@127.0.0.1:${s.port}/${s.database}`,
      );
      $('link').innerHTML =
        `${escapeHtml(t('staff.reopenFor', { name: a.name, time: format.dateTime(r.reopenedUntil) }))}<pre>${escapeHtml(lines.join('\n'))}</pre>`;
    });
    action(t('staff.deleteNow'), () =>
      confirm(t('staff.confirmDeleteNow', { name: a.name }))
        ? api('POST', `/assessments/${a.name}/revoke`)
        : Promise.resolve(),
    );
  }
  // ---- end hibernation ----
  const ended = a.revoked || a.phase === 'Expired' || a.phase === 'Hibernated';
  if (!ended) {
    action(t('staff.link'), async () => {
      const l = await api('POST', `/assessments/${a.name}/link`);
      $('link').innerHTML =
        `${escapeHtml(t('staff.linkFor', { name: a.name }))}<pre>${escapeHtml(l.url)}</pre>`;
    });
    action(t('staff.plusHour'), () =>
      api('POST', `/assessments/${a.name}/extend`, { duration: plusHour(a.duration) }),
    );
    action(t('staff.revoke'), () =>
      confirm(t('staff.confirmRevoke', { name: a.name }))
        ? api('POST', `/assessments/${a.name}/revoke`)
        : Promise.resolve(),
    );
  }
  action(t('staff.results'), () => showResults(a));
  return tr;
}

const plusHour = (d) => {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?$/.exec(d ?? '4h') ?? [];
  const minutes = Number(m[1] ?? 4) * 60 + Number(m[2] ?? 0) + 60;
  return `${Math.floor(minutes / 60)}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
};

async function showResults(a) {
  $('results-section').hidden = false;
  $('results-title').textContent = t('staff.resultsFor', { candidate: a.candidate.name, name: a.name });
  const box = $('results');
  const [subs, card] = await Promise.all([
    api('GET', `/assessments/${a.name}/submissions`),
    api('GET', `/assessments/${a.name}/scorecard?dataApi=true`),
  ]);
  const taskOf = Object.fromEntries(card.tasks.map((t) => [t.id, t]));
  const minutes =
    card.timeUsedSeconds === null
      ? '—'
      : t('staff.minutes', { count: format.number(Math.round(card.timeUsedSeconds / 60)) });
  const n = format.number;
  const score = t('staff.score', {
    earned: n(card.total.earned),
    max: n(card.total.max),
    autoEarned: n(card.auto.earned),
    autoMax: n(card.auto.max),
    manualEarned: n(card.manual.earned),
    manualMax: n(card.manual.max),
    toReview: card.manual.toReview ? t('staff.toReviewCount', { count: card.manual.toReview }) : '',
    interviewEarned: n(card.interview.earned),
    interviewMax: n(card.interview.max),
    minutes,
  });
  const summary = `<p id="scorecard"><strong>${escapeHtml(score)}</strong></p>`;
  // A manual task's answer gets a grading form: points up to the task's, and a comment.
  const gradeForm = (s) => {
    const task = taskOf[s.task];
    if (task?.kind !== 'manual') return '';
    return `<div class="row grade" data-submission="${escapeHtml(s.id)}"><input type="number" min="0" max="${task.max}" value="${s.points ?? ''}" aria-label="${escapeHtml(t('staff.pointsFor', { task: s.task, max: task.max }))}"><input aria-label="${escapeHtml(t('staff.commentFor', { task: s.task }))}" maxlength="4000" value="${s.graded ? escapeHtml(s.explanation) : ''}"><button>${t('staff.grade')}</button></div>`;
  };
  const table = subs.items.length
    ? `<table><thead><tr><th scope="col">${t('staff.col.task')}</th><th scope="col">${t('staff.col.submitted')}</th><th scope="col">${t('staff.col.grade')}</th><th scope="col">${t('staff.col.answer')}</th></tr></thead><tbody>${subs.items
        .map(
          (s) =>
            `<tr><td>${escapeHtml(s.task)}</td><td>${format.dateTime(s.submittedAt)}</td><td class="${s.graded ? (s.pass ? 'pass' : 'fail') : ''}">${s.graded ? `${t(s.pass ? 'staff.pass' : 'staff.fail')} (${n(s.points ?? 0)} pt)` : t('staff.toReview')}<br><span class="muted">${escapeHtml(s.explanation)}</span>${gradeForm(s)}</td><td><pre>${escapeHtml(s.answer)}</pre></td></tr>`,
        )
        .join('')}</tbody></table>`
    : `<p class="muted">${t('staff.noSubmission')}</p>`;
  box.innerHTML = `<h3>${t('staff.scorecard')}</h3>${summary}<h3>${t('staff.timeline')}</h3>${timeline(a, card, subs.items)}${signalsOf(card.signals)}<h3>${t('staff.submissions')}</h3>${table}<h3>${t('staff.interview')}</h3><div id="interview"></div>`;
  for (const form of box.querySelectorAll('.grade'))
    form.querySelector('button').addEventListener('click', () =>
      api('PUT', `/assessments/${a.name}/submissions/${form.dataset.submission}/grade`, {
        points: Number(form.querySelector('input[type=number]').value),
        comment: form.querySelectorAll('input')[1].value,
      }).then(() => showResults(a), fail),
    );
  try {
    const guide = await api('GET', `/assessments/${a.name}/interview`);
    const div = $('interview');
    div.innerHTML = `<p class="muted">${escapeHtml(guide.guide.title)} — ${escapeHtml(guide.guide.scale ?? '')} — ${t('staff.scored', guide.summary)}${guide.summary.average !== null ? t('staff.average', { average: n(guide.summary.average) }) : ''}</p>`;
    for (const s of guide.sections) {
      const details = document.createElement('details');
      details.innerHTML = `<summary>${escapeHtml(s.title)}</summary>`;
      for (const q of s.questions) {
        const p = document.createElement('div');
        p.className = 'panel';
        const id = `score-${q.id}`;
        p.innerHTML = `<p><strong>${escapeHtml(q.question)}</strong></p><p class="muted">${escapeHtml(q.answer)}</p>
          <div class="row"><label for="${id}">${t('staff.scoreLabel')}</label><select id="${id}">${[0, 1, 2, 3, 4].map((n) => `<option ${q.score?.score === n ? 'selected' : ''}>${n}</option>`).join('')}</select>
          <input aria-label="${escapeHtml(t('staff.noteFor', { question: q.question }))}" value="${escapeHtml(q.score?.note ?? '')}" maxlength="2000"><button>${t('staff.save')}</button></div>`;
        p.querySelector('button').addEventListener('click', () =>
          api('PUT', `/assessments/${a.name}/interview/scores/${q.id}`, {
            score: Number(p.querySelector('select').value),
            note: p.querySelector('input').value,
          }).then(() => (p.querySelector('button').textContent = t('staff.saved')), fail),
        );
        details.append(p);
      }
      div.append(details);
    }
  } catch (err) {
    $('interview').innerHTML = `<p class="muted">${escapeHtml(err.message)}</p>`;
  }
}

/** What happened to an assessment, in order: created, started, each answer, the end. */
function timeline(a, card, submissions) {
  const events = [[a.createdAt, t('staff.event.created')]];
  if (card.startedAt) events.push([card.startedAt, t('staff.event.started')]);
  if (card.signals.firstConnectionAt)
    events.push([card.signals.firstConnectionAt, t('staff.event.firstConnection')]);
  for (const s of submissions) {
    const verdict = s.graded ? t(s.pass ? 'staff.pass' : 'staff.fail') : t('staff.toReview');
    events.push([s.submittedAt, t('staff.event.submitted', { task: s.task, verdict })]);
  }
  if (card.expiresAt)
    events.push([
      card.expiresAt,
      t(Date.parse(card.expiresAt) <= Date.now() ? 'staff.event.ended' : 'staff.event.ends'),
    ]);
  if (card.revoked) events.push([null, t('staff.event.revoked')]);
  const items = events
    .filter(([at]) => at !== '')
    .sort(([x], [y]) => (x === null) - (y === null) || String(x).localeCompare(String(y)))
    .map(
      ([at, what]) =>
        `<li>${at ? `<time datetime="${escapeHtml(at)}">${format.dateTime(at)}</time> — ` : ''}${escapeHtml(what)}</li>`,
    );
  return `<ol class="timeline">${items.join('')}</ol>`;
}

/** Integrity signals as neutral flags (what the gateway saw), with the note that they are not verdicts. */
function signalsOf(s) {
  const n = format.number;
  const flags = s.flags.map((f) => t(`staff.signal.${f.code}`, { count: n(f.value), seconds: n(f.value) }));
  const details = [];
  if (s.connections)
    details.push(
      t('staff.signal.connections', {
        count: n(s.connections),
        sandboxes: s.sandboxes.map((x) => `${x.name} ${n(x.connections)}`).join(', '),
      }),
    );
  if (s.clientAddresses.length)
    details.push(t('staff.signal.addresses', { addresses: s.clientAddresses.join(', ') }));
  const items = (flags.length ? flags : [t('staff.signal.none')])
    .map((f) => `<li class="flag">${escapeHtml(f)}</li>`)
    .join('');
  return `<h3>${t('staff.signals')}</h3><p class="muted">${t('staff.signalsNote')}</p><ul id="signals">${items}</ul>${details.map((d) => `<p class="muted">${escapeHtml(d)}</p>`).join('')}`;
}

/** The results board: every assessment's scorecard, sorted by a column and filtered by text. */
let board = [];
let sortKey = 'candidate';
let sortDir = 1;
const boardValue = {
  candidate: (c) => c.candidate.toLowerCase(),
  template: (c) => c.template,
  phase: (c) => c.phase,
  score: (c) => (c.total.max ? c.total.earned / c.total.max : 0),
  progress: (c) => c.tasks.filter((x) => x.max > 0 && x.earned === x.max).length,
  attempts: (c) => c.tasks.reduce((n, x) => n + x.attempts, 0),
  left: (c) => (c.expiresAt && !c.revoked ? Math.max(0, Date.parse(c.expiresAt) - Date.now()) : -1),
};

function timeLeft(c) {
  if (c.revoked) return t('staff.revoked');
  if (!c.expiresAt) return t('staff.notStarted');
  const ms = Date.parse(c.expiresAt) - Date.now();
  if (ms <= 0) return t('staff.ended');
  const minutes = Math.ceil(ms / 60_000);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')}`;
}

function renderBoard() {
  const needle = $('board-filter').value.trim().toLowerCase();
  const shown = board
    .filter(
      (c) =>
        !needle || [c.candidate, c.assessment, c.template, c.phase].join(' ').toLowerCase().includes(needle),
    )
    .sort((x, y) => {
      const [a, b] = [boardValue[sortKey](x), boardValue[sortKey](y)];
      return (a < b ? -1 : a > b ? 1 : 0) * sortDir || x.assessment.localeCompare(y.assessment);
    });
  for (const th of document.querySelectorAll('#board th[data-sort]'))
    th.setAttribute(
      'aria-sort',
      th.dataset.sort === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none',
    );
  const n = format.number;
  $('board-rows').replaceChildren(
    ...shown.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.name = c.assessment;
      const passed = boardValue.progress(c);
      const graded = c.tasks.filter((x) => x.max > 0).length;
      const pct = c.total.max ? Math.round((100 * c.total.earned) / c.total.max) : 0;
      tr.innerHTML = `<td>${escapeHtml(c.candidate)}<br><span class="muted">${escapeHtml(c.assessment)}</span></td><td>${escapeHtml(c.template)}</td><td>${escapeHtml(c.phase)}</td>
        <td data-score>${n(c.total.earned)} / ${n(c.total.max)} <span class="muted">(${n(pct)} %)</span>${c.manual.toReview ? `<br><span class="muted">${escapeHtml(t('staff.toReviewCount', { count: c.manual.toReview }).trim())}</span>` : ''}</td>
        <td>${n(passed)} / ${n(graded)}</td><td>${n(boardValue.attempts(c))}</td><td>${escapeHtml(timeLeft(c))}</td>`;
      return tr;
    }),
  );
}

async function loadBoard() {
  try {
    const [cards, similar] = await Promise.all([api('GET', '/scorecards'), api('GET', '/similarity')]);
    board = cards.items;
    $('board-section').hidden = false;
    renderBoard();
    const who = (p) => `${p.candidate} (${p.assessment})`;
    $('similar').replaceChildren(
      ...(similar.pairs.length
        ? similar.pairs.map((p) => {
            const li = document.createElement('li');
            li.textContent = t('staff.similarPair', {
              task: p.task,
              a: who(p.a),
              b: who(p.b),
              percent: format.number(Math.round(p.similarity * 100)),
            });
            return li;
          })
        : [Object.assign(document.createElement('li'), { textContent: t('staff.noSimilar') })]),
    );
  } catch (err) {
    fail(err);
  }
}

for (const th of document.querySelectorAll('#board th[data-sort]'))
  th.querySelector('button').addEventListener('click', () => {
    sortDir = sortKey === th.dataset.sort ? -sortDir : 1;
    sortKey = th.dataset.sort;
    renderBoard();
  });
$('board-filter').addEventListener('input', renderBoard);
$('board-refresh').addEventListener('click', loadBoard);
$('print').addEventListener('click', () => window.print());

async function open() {
  sessionStorage.setItem('epreuve-team', team);
  sessionStorage.setItem('epreuve-staff-token', credential);
  try {
    const templates = await api('GET', '/templates');
    $('template').replaceChildren(
      ...templates.items.map((t) => new Option(`${t.title} (${t.duration})`, t.name)),
    );
    $('create-section').hidden = false;
    $('list-section').hidden = false;
    await refresh();
    await loadBoard();
    await loadWebhooks();
  } catch (err) {
    fail(err);
  }
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  team = $('team').value.trim();
  credential = $('token').value.trim();
  open();
});

$('create').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    const body = {
      templateRef: { name: $('template').value },
      candidate: { name: $('cname').value, email: $('cemail').value },
      startPolicy: $('policy').value,
      ...($('duration').value ? { duration: $('duration').value } : {}),
    };
    const a = await api('POST', '/assessments', body);
    $('link').textContent = t('staff.created', { name: a.name });
    ev.target.reset();
    await refresh();
  } catch (err) {
    fail(err);
  }
});

$('team').value = team;
if (team && credential) open();
setInterval(() => team && credential && refresh(), 5000);

// The team's scorecards as a CSV file (the request carries the credential, so no plain link).
$('export').addEventListener('click', async () => {
  try {
    const res = await fetch(`/api/v1/teams/${encodeURIComponent(team)}/scorecards.csv`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await res.blob());
    a.download = `${team}-scorecards.csv`;
    a.click();
    URL.revokeObjectURL(a.href);
  } catch (err) {
    fail(err);
  }
});

// Webhook deliveries (docs/webhooks.md): the operator sends them and keeps the log; staff read it
// and ask for a redelivery, which the operator sends with the same event id.
async function loadWebhooks() {
  try {
    const { deliveries } = await api('GET', '/webhooks/deliveries');
    $('webhooks-section').hidden = false;
    $('webhook-rows').replaceChildren(...deliveries.map(webhookRow));
    $('webhooks-status').textContent = deliveries.length ? '' : t('staff.webhooks.none');
  } catch (err) {
    $('webhooks-status').textContent = err.message;
  }
}

function webhookRow(d) {
  const tr = document.createElement('tr');
  const last = d.history.at(-1);
  const outcome = last
    ? (last.status ? `HTTP ${last.status}` : '') + (last.error ? ` ${last.error}` : '')
    : '';
  const event = d.type.replace(/^dev\.epreuve\.assessment\.|\.v\d+$/g, '');
  tr.innerHTML = `<td>${escapeHtml(event)}<br><span class="muted">${escapeHtml(d.id)}</span></td><td>${escapeHtml(d.subject)}</td>
    <td>${escapeHtml(t(`staff.webhooks.state.${d.state}`))}</td><td>${d.attempts}</td>
    <td>${last ? `${format.dateTime(last.at)}<br><span class="muted">${escapeHtml(outcome)}</span>` : ''}</td><td></td>`;
  const b = document.createElement('button');
  b.className = 'secondary';
  b.textContent = t('staff.webhooks.redeliver');
  b.setAttribute('aria-label', `${t('staff.webhooks.redeliver')} ${d.id}`);
  b.addEventListener('click', async () => {
    try {
      await api('POST', `/webhooks/deliveries/${encodeURIComponent(d.id)}/redeliver`);
      $('webhooks-status').textContent = t('staff.webhooks.requested', { id: d.id });
    } catch (err) {
      $('webhooks-status').textContent = err.message;
    }
  });
  tr.lastElementChild.append(b);
  return tr;
}
$('webhooks-refresh').addEventListener('click', loadWebhooks);
