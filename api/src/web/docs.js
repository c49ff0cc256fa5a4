// Renders /openapi.json as a readable reference: every operation, its parameters and body fields.
const escapeHtml = (s) =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
const fields = (schema, prefix = '') =>
  Object.entries(schema?.properties ?? {}).flatMap(([k, v]) => [
    `<tr><td><code>${escapeHtml(prefix + k)}</code></td><td>${escapeHtml(v.type ?? (v.enum ? v.enum.join(' | ') : ''))}</td><td>${escapeHtml(v.description ?? '')}</td></tr>`,
    ...(v.type === 'object' ? fields(v, `${prefix}${k}.`) : []),
  ]);
// Who may call an operation, by its security scheme.
const WHO = { staff: 'staff: OIDC token or API key', candidate: 'candidate link' };
const doc = await (await fetch('/openapi.json')).json();
document.getElementById('intro').textContent = doc.info.description;
const out = [];
for (const [path, ops] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    const params = (op.parameters ?? []).map(
      (p) =>
        `<tr><td><code>${escapeHtml(p.name)}</code> (${p.in})</td><td>${escapeHtml(p.schema?.type ?? '')}</td><td>${escapeHtml(p.description ?? '')}</td></tr>`,
    );
    const body = fields(op.requestBody?.content?.['application/json']?.schema);
    const rows = [...params, ...body];
    const who =
      (op.security ?? []).map((s) => WHO[Object.keys(s)[0]] ?? Object.keys(s)[0]).join(' or ') || 'anyone';
    const answers = Object.entries(op.responses ?? {}).map(
      ([status, r]) => `<li><code>${escapeHtml(status)}</code> ${escapeHtml(r.description ?? '')}</li>`,
    );
    out.push(
      `<section class="panel"><h2><code>${method.toUpperCase()} ${escapeHtml(path)}</code></h2><p>${escapeHtml(op.summary ?? '')} <small>(${escapeHtml(who)})</small></p>${rows.length ? `<table><thead><tr><th>name</th><th>type</th><th>meaning</th></tr></thead><tbody>${rows.join('')}</tbody></table>` : ''}<details><summary>Answers</summary><ul>${answers.join('')}</ul></details></section>`,
    );
  }
}
document.getElementById('ops').innerHTML = out.join('');
