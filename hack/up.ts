/**
 * `make up`: Épreuve running with a demo assessment, from a fresh machine. Uses the current
 * kube-context when there is a reachable one (kind, a dev cluster…), otherwise starts the built-in
 * single-node cluster (hack/cluster). Installs the chart with Helm, applies the sample templates in
 * the `demo` team namespace, creates a demo assessment through the API and prints what to open.
 * `make down` (hack/down.ts) removes it all.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findBinary, HACK_DIR } from './cluster/assets.ts';
import { readState } from './cluster/cluster.ts';
import {
  applySampleTemplate,
  installPlatform,
  PLATFORM_NAMESPACE,
  UP_DIR,
  UP_STATE,
} from './cluster/platform.ts';

const TEAM = 'demo';
const say = (m: string) => console.log(`up: ${m}`);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

/** The current kube-context's kubeconfig, if one is set and its API server answers. */
function currentContext(): string | undefined {
  const path = process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
  if (!existsSync(path.split(':')[0]!)) return undefined;
  try {
    execFileSync(findBinary('kubectl'), ['--request-timeout=5s', 'version'], { stdio: 'pipe' });
    return path;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  let kubeconfig = currentContext();
  const builtIn = kubeconfig === undefined;
  if (builtIn) {
    say(
      'no reachable kube-context: starting the built-in single-node cluster (first run: builds images, ~10 min)',
    );
    execFileSync(process.execPath, [join(HACK_DIR, 'cluster', 'main.ts'), 'up'], { stdio: 'inherit' });
    kubeconfig = readState()!.kubeconfig;
  } else say(`using the current kube-context (${kubeconfig})`);

  const values = builtIn ? [join(HACK_DIR, '..', 'test', 'e2e', 'values.yaml')] : [];
  const { apiKey } = await installPlatform({
    kubeconfig: kubeconfig!,
    valuesFiles: values,
    teams: [TEAM],
    progress: say,
  });
  mkdirSync(UP_DIR, { recursive: true });
  const keyFile = join(UP_DIR, 'api-key');
  writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(UP_STATE, JSON.stringify({ builtIn, kubeconfig, team: TEAM }));
  for (const t of ['data-engineer', 'backend-engineer']) await applySampleTemplate(kubeconfig!, TEAM, t);

  // The API: the node's NodePort on the built-in cluster; a port-forward elsewhere.
  let apiUrl = 'http://10.244.0.1:30080';
  let forward: ReturnType<typeof spawn> | undefined;
  if (!builtIn) {
    forward = spawn(
      findBinary('kubectl'),
      ['--kubeconfig', kubeconfig!, '-n', PLATFORM_NAMESPACE, 'port-forward', 'svc/epreuve-api', '18080:80'],
      {
        stdio: 'ignore',
      },
    );
    apiUrl = 'http://127.0.0.1:18080';
  }
  try {
    const call = async (method: string, path: string, body?: unknown, token = apiKey) => {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await fetch(`${apiUrl}${path}`, {
            method,
            headers: {
              authorization: `Bearer ${token}`,
              ...(body ? { 'content-type': 'application/json' } : {}),
            },
            body: body ? JSON.stringify(body) : undefined,
          });
          // biome-ignore lint/suspicious/noExplicitAny: JSON from our own API, read field by field below
          const json = (await res.json()) as Record<string, any>;
          if (res.status >= 500 && attempt < 30) throw new Error(`${res.status}`);
          return { status: res.status, body: json };
        } catch (err) {
          if (attempt >= 30) throw err;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    const name = 'demo-candidate';
    const existing = await call('GET', `/api/v1/teams/${TEAM}/assessments/${name}`);
    if (existing.status === 404) {
      say('creating the demo assessment through the API');
      const created = await call('POST', `/api/v1/teams/${TEAM}/assessments`, {
        name,
        templateRef: { name: 'data-engineer' },
        candidate: { name: 'Demo Candidate', email: 'demo@example.com' },
        duration: '4h',
        startPolicy: 'OnFirstAccess',
      });
      if (created.status !== 201)
        throw new Error(`creating the demo assessment: ${JSON.stringify(created.body)}`);
    }
    say('waiting for the demo assessment to be Ready (pods, seeded databases)');
    for (let i = 0; ; i++) {
      const a = (await call('GET', `/api/v1/teams/${TEAM}/assessments/${name}`)).body;
      if (a.phase === 'Ready') break;
      if (i > 300)
        throw new Error(`the demo assessment is not Ready after 5 minutes: ${JSON.stringify(a.conditions)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const link = (await call('POST', `/api/v1/teams/${TEAM}/assessments/${name}/link`)).body;
    const session = (await call('GET', '/api/v1/candidate/session', undefined, link.token)).body;
    const warehouse = session.sandboxes?.find((s: { kind: string }) => s.kind === 'postgres');
    const staffUrl = `${apiUrl}/staff`;
    console.log(`
Épreuve is up (${elapsed()}).

  Candidate link:  ${link.url}
  Staff page:      ${staffUrl}   (team ${TEAM}; sign in with the API key in ${keyFile})
  API reference:   ${apiUrl}/docs
  kubectl:         export KUBECONFIG=${kubeconfig}
${
  warehouse?.snippets
    ? `
  Connect as the candidate (PostgreSQL through the sandbox gateway):
    ${warehouse.snippets.psql}
`
    : `
  Open the candidate link and press Start: the prompts and the connection details (psql,
  mongosh, curl) appear then, and the clock starts.
`
}${builtIn ? '' : `\n  The API is reached with: kubectl -n ${PLATFORM_NAMESPACE} port-forward svc/epreuve-api 18080:80\n`}
  Remove everything:  make down
`);
  } finally {
    forward?.kill();
  }
}

await main().catch((err) => {
  console.error(`up: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
