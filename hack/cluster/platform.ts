import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary, HACK_DIR } from './assets.ts';

const execFileAsync = promisify(execFile);
const REPO = join(HACK_DIR, '..');

/**
 * Installs Épreuve the way users do — `helm upgrade --install` of charts/epreuve — on any cluster
 * (the built-in node for `make up` and the e2e tier, or the current kube-context), with an API key
 * Secret so the caller can drive the API. Shared by `make up` and test/e2e.
 */
export const PLATFORM_NAMESPACE = 'epreuve-system';
export const API_KEYS_SECRET = 'epreuve-api-keys';
/** Where `make up` keeps what `make down` needs, and the local admin API key (mode 600). */
export const UP_DIR = '/run/epreuve';
export const UP_STATE = join(UP_DIR, 'up.json');

export interface InstallOptions {
  kubeconfig: string;
  /** Helm values files, in order (the last wins). */
  valuesFiles: string[];
  /** Teams (namespaces) the generated admin API key may manage. */
  teams: string[];
  progress?: (message: string) => void;
}

export interface Platform {
  /** The staff API key (epk_…), for the caller only: only its SHA-256 is stored in the cluster. */
  apiKey: string;
}

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  const child = execFileAsync(cmd, args, { maxBuffer: 64 << 20 });
  if (input !== undefined) child.child.stdin?.end(input);
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `${cmd.split('/').pop()} ${args.slice(0, 3).join(' ')} failed: ${e.stderr?.trim() || e.message}`,
    );
  }
}

export function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  return run(findBinary('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], input);
}

export async function helmBinary(): Promise<string> {
  return (await run(join(HACK_DIR, 'build-go-tool.sh'), ['helm'])).trim();
}

export async function installPlatform(opts: InstallOptions): Promise<Platform> {
  const progress = opts.progress ?? (() => {});
  const apiKey = `epk_${randomBytes(24).toString('base64url')}`;
  const keys = [
    {
      name: 'local-admin',
      sha256: createHash('sha256').update(apiKey).digest('hex'),
      role: 'admin',
      teams: opts.teams,
    },
  ];
  const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const objects = [
    namespace(PLATFORM_NAMESPACE),
    ...opts.teams.map(namespace),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: API_KEYS_SECRET, namespace: PLATFORM_NAMESPACE },
      stringData: { 'api-keys.json': JSON.stringify(keys) },
    },
  ];
  await kubectl(
    opts.kubeconfig,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=epreuve-local', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
  const apiServer = await apiServerEndpoints(opts.kubeconfig);
  progress('installing the chart (helm upgrade --install … --wait)');
  await run(await helmBinary(), [
    'upgrade',
    '--install',
    'epreuve',
    join(REPO, 'charts', 'epreuve'),
    `--kubeconfig=${opts.kubeconfig}`,
    `--namespace=${PLATFORM_NAMESPACE}`,
    ...opts.valuesFiles.flatMap((f) => ['-f', f]),
    `--set=api.apiKeysSecret=${API_KEYS_SECRET}`,
    // The API may write only in the team namespaces it is told about.
    `--set-json=teams=${JSON.stringify(opts.teams)}`,
    // The operator's egress policy opens exactly this cluster's API server endpoints.
    ...(apiServer ? [`--set-json=networkPolicy.operatorEgress.apiServer=${JSON.stringify(apiServer)}`] : []),
    '--wait',
    '--timeout=5m',
  ]);
  // A new key Secret only reaches running API pods on restart.
  await kubectl(opts.kubeconfig, ['-n', PLATFORM_NAMESPACE, 'rollout', 'restart', 'deployment/epreuve-api']);
  await kubectl(opts.kubeconfig, [
    '-n',
    PLATFORM_NAMESPACE,
    'rollout',
    'status',
    'deployment/epreuve-api',
    '--timeout=3m',
  ]);
  // Each team's new Assessment quota refuses creates until the controller manager counts
  // Assessments in it (the API answers 503 meanwhile): wait for that count (and nudge it, see
  // countQuota), so the demo's first create succeeds.
  for (const team of opts.teams) {
    const counted = await countQuota(opts.kubeconfig, team, TEAM_QUOTA, 'count/assessments.epreuve.dev', {
      progress,
    });
    if (counted === false) progress(`the Assessment quota of ${team} is still not counted: creates get 503`);
  }
  return { apiKey };
}

/**
 * The API server as NetworkPolicies see it: the `kubernetes` Service's endpoint addresses and
 * ports (policies apply after the Service address is translated; the built-in node's API server
 * listens on a random port). Undefined when there are none: the chart's defaults stand.
 */
export async function apiServerEndpoints(
  kubeconfig: string,
): Promise<{ cidrs: string[]; ports: number[] } | undefined> {
  const out = await kubectl(kubeconfig, [
    'get',
    'endpointslices',
    '-n',
    'default',
    '-l',
    'kubernetes.io/service-name=kubernetes',
    '-o',
    'json',
  ]);
  const slices = (
    JSON.parse(out) as {
      items: Array<{ endpoints?: Array<{ addresses: string[] }>; ports?: Array<{ port?: number }> }>;
    }
  ).items;
  const addresses = [...new Set(slices.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)))];
  const ports = [...new Set(slices.flatMap((s) => (s.ports ?? []).flatMap((p) => (p.port ? [p.port] : []))))];
  if (!addresses.length || !ports.length) return undefined;
  return { cidrs: addresses.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)), ports };
}

/** The chart's per-team ResourceQuota on Assessments (teamAssessmentQuota > 0). */
export const TEAM_QUOTA = 'epreuve-assessments';

/**
 * Waits until the quota controller has counted `resource` in a ResourceQuota (its status.used has
 * the key), nudging it meanwhile. Returns true once counted, false on timeout, undefined when the
 * quota does not exist.
 *
 * Why the nudge: kube-controller-manager counts objects of a custom resource only once its
 * discovery (every 30 s) has seen the CRD, and a quota it processed before then — a quota
 * installed with its CRD, as one `helm install` does — is counted again only at its next full
 * resync (`--resource-quota-sync-period`, 5 min by default): it watches no object additions. A
 * change to spec.hard makes it recount at once, so while the key is missing the hard limit is
 * raised by one and set back (two recounts; the limit ends as it was).
 */
export async function countQuota(
  kubeconfig: string,
  namespace: string,
  name: string,
  resource: string,
  o: { timeoutMs?: number; nudgeEveryMs?: number; progress?: (message: string) => void } = {},
): Promise<boolean | undefined> {
  const escaped = resource.replaceAll('.', '\\.');
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  let nudged = Date.now();
  for (;;) {
    const [found, hard, used] = (
      await kubectl(kubeconfig, [
        ...['-n', namespace, 'get', 'resourcequota', name, '--ignore-not-found', '-o'],
        `jsonpath={.metadata.name}|{.spec.hard.${escaped}}|{.status.used.${escaped}}`,
      ])
    ).split('|');
    if (!found) return undefined;
    if (!hard) throw new Error(`${namespace}/${name} has no hard limit on ${resource}`);
    if (used) return true;
    if (Date.now() > deadline) return false;
    if (Date.now() - nudged >= (o.nudgeEveryMs ?? 10_000)) {
      nudged = Date.now();
      o.progress?.(`nudging the quota controller to count ${resource} in ${namespace}/${name}`);
      for (const value of [String(Number(hard) + 1), hard])
        await kubectl(kubeconfig, [
          ...['-n', namespace, 'patch', 'resourcequota', name, '--type=merge', '-p'],
          JSON.stringify({ spec: { hard: { [resource]: value } } }),
        ]);
    } else o.progress?.(`waiting for ${resource} to be counted in ${namespace}/${name}`);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

/** Applies a sample AssessmentTemplate (charts/epreuve/samples) into a team namespace. */
export async function applySampleTemplate(kubeconfig: string, team: string, name: string): Promise<void> {
  const yaml = readFileSync(join(REPO, 'charts', 'epreuve', 'samples', `${name}.yaml`), 'utf8');
  await kubectl(
    kubeconfig,
    ['-n', team, 'apply', '--server-side', '--field-manager=epreuve-local', '-f', '-'],
    yaml,
  );
}
