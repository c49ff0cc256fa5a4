/**
 * Where the API server is and how to authenticate to it, without `@kubernetes/client-node`.
 *
 * Hand-written on purpose: importing client-node costs a process about 80 MB of RSS (its
 * `config.js` pulls in the whole generated API, ~25 MB of module source alone — see
 * docs/benchmarks.md, "Operator footprint"), and every Épreuve process only needs what this file
 * reads: the pod's service account, or a kubeconfig with a token, a client certificate or basic
 * auth, and a CA. Kubeconfigs that need code to get a credential (`exec` and `auth-provider`
 * plugins, proxies) still go through client-node, imported only then.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';

/** The API server's URL and a way to get the headers and connection pool of each request. */
export interface Credentials {
  readonly server: string;
  /** Called again now and then (KubeClient: every minute), so rotated token files are picked up. */
  authenticate(): Promise<{ headers: Record<string, string>; agent: HttpAgent }>;
}

/**
 * One keep-alive connection pool per API server, node's own (`https.Agent` carries the CA, client
 * certificate and server name). Node's http rather than npm undici: undici's import alone cost the
 * operator about 20 MB of RSS (docs/benchmarks.md, "Operator footprint").
 */
export function agentFor(server: string, tls: HttpsAgentOptions = {}): HttpAgent {
  return server.startsWith('https:')
    ? new HttpsAgent({ keepAlive: true, ...tls })
    : new HttpAgent({ keepAlive: true });
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the pod's service account is mounted (tests point it elsewhere). */
  serviceAccountDir?: string;
  home?: string;
}

/**
 * The same order as client-node's `loadFromDefault` (and kubectl): $KUBECONFIG, then
 * ~/.kube/config, then the pod's service account; with none of them, http://localhost:8080
 * unauthenticated, as client-node does (a process then starts, and fails its requests).
 */
export function loadCredentials(opts: LoadOptions = {}): Credentials {
  const env = opts.env ?? process.env;
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const fromEnv = env.KUBECONFIG?.split(':').filter(Boolean) ?? [];
  // As kubectl: files of a list that do not exist are skipped; a single one must exist.
  if (fromEnv.length > 1) return fromKubeconfigFiles(fromEnv.filter((p) => existsSync(p)));
  if (fromEnv.length === 1) return fromKubeconfigFiles(fromEnv);
  const home = join(opts.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFiles([home]);
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(saDir, 'token'))) return inCluster(env, saDir);
  const agent = agentFor('http://localhost:8080');
  return { server: 'http://localhost:8080', authenticate: async () => ({ headers: {}, agent }) };
}

/** The pod's service account: the token is read again at each authenticate (bound tokens rotate). */
export function inCluster(env: NodeJS.ProcessEnv, saDir = SERVICE_ACCOUNT_DIR): Credentials {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new Error('in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT');
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const agent = agentFor(server, { ca: readFileSync(join(saDir, 'ca.crt')) });
  return {
    server,
    authenticate: async () => ({
      headers: { authorization: `Bearer ${readFileSync(join(saDir, 'token'), 'utf8').trim()}` },
      agent,
    }),
  };
}

interface NamedCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
}
interface NamedUser {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}
interface Kubeconfig {
  'current-context'?: string;
  clusters?: Array<{ name: string; cluster?: NamedCluster }>;
  users?: Array<{ name: string; user?: NamedUser }>;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
}

/**
 * The current context of one kubeconfig file, or of several merged as kubectl merges $KUBECONFIG:
 * the first file to set a name (or current-context) wins. A relative file path in an entry is
 * relative to the file the entry came from, as in client-go.
 */
export function fromKubeconfigFiles(paths: readonly string[]): Credentials {
  const docs = paths.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`kubeconfig ${path}: ${(err as Error).message}`);
    }
    return { path, doc: parseKubeconfig(text, path) };
  });
  const where = paths.join(':');
  const at = (what: string) => new Error(`kubeconfig ${where}: ${what}`);
  const find = <T>(list: 'clusters' | 'users' | 'contexts', name: string | undefined) => {
    for (const { path, doc } of docs) {
      const entry = (doc[list] as Array<{ name: string }> | undefined)?.find((e) => e.name === name);
      if (entry) return { entry: entry as T, dir: dirname(path) };
    }
    return undefined;
  };
  const current = docs.find((d) => d.doc['current-context'])?.doc['current-context'];
  if (!current) throw at('no current-context');
  const context = find<{ context?: { cluster?: string; user?: string } }>('contexts', current)?.entry.context;
  if (!context) throw at(`current-context "${current}" is not in contexts`);
  const c = find<{ cluster?: NamedCluster }>('clusters', context.cluster);
  const cluster = c?.entry.cluster;
  if (!cluster) throw at(`cluster "${context.cluster}" of context "${current}" is not in clusters`);
  if (!cluster.server) throw at(`cluster "${context.cluster}" has no server`);
  const server = cluster.server.replace(/\/$/, '');
  const u = context.user ? find<{ user?: NamedUser }>('users', context.user) : undefined;
  const user = u?.entry.user ?? {};
  if (user.exec || user['auth-provider'])
    return viaClientNode(server, paths, `user "${context.user}" has an exec or auth-provider plugin`);
  if (cluster['proxy-url'])
    return viaClientNode(server, paths, `cluster "${context.cluster}" has a proxy-url`);

  const file = (p: string, dir: string) => readFileSync(isAbsolute(p) ? p : join(dir, p));
  const data = (inline: string | undefined, p: string | undefined, dir: string) =>
    inline ? Buffer.from(inline, 'base64') : p ? file(p, dir) : undefined;
  const userDir = u?.dir ?? '.';
  const agent = agentFor(server, {
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority'], c!.dir),
    cert: data(user['client-certificate-data'], user['client-certificate'], userDir),
    key: data(user['client-key-data'], user['client-key'], userDir),
    rejectUnauthorized: !cluster['insecure-skip-tls-verify'],
    ...(cluster['tls-server-name'] ? { servername: cluster['tls-server-name'] } : {}),
  });
  const headers = (): Record<string, string> => {
    if (user.token) return { authorization: `Bearer ${user.token}` };
    if (user.tokenFile)
      return { authorization: `Bearer ${file(user.tokenFile, userDir).toString('utf8').trim()}` };
    if (user.username !== undefined)
      return {
        authorization: `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}`,
      };
    return {};
  };
  return { server, authenticate: async () => ({ headers: headers(), agent }) };
}

function parseKubeconfig(text: string, path: string): Kubeconfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`kubeconfig ${path}: not YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`kubeconfig ${path}: not a mapping`);
  return doc as Kubeconfig;
}

/**
 * Credentials from a client-node KubeConfig (its exec and auth-provider plugins, proxies, merged
 * files). client-node is imported here only, when such a kubeconfig is used.
 */
export function fromKubeConfig(kc: KubeConfig): Credentials {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const server = cluster.server.replace(/\/$/, '');
  let agent: HttpAgent | undefined;
  return {
    server,
    authenticate: async () => {
      // Headers (exec plugins run here), TLS files and, for a proxy-url, client-node's proxy agent.
      const opts: HttpsAgentOptions & {
        headers?: Record<string, unknown>;
        auth?: string;
        agent?: HttpAgent;
      } = {};
      await kc.applyToHTTPSOptions(opts);
      agent ??= cluster.proxyUrl
        ? opts.agent!
        : agentFor(server, {
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key,
            pfx: opts.pfx,
            passphrase: opts.passphrase,
            ...(opts.rejectUnauthorized !== undefined && { rejectUnauthorized: opts.rejectUnauthorized }),
            ...(opts.servername && { servername: opts.servername }),
          });
      const headers = Object.fromEntries(
        Object.entries(opts.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
      );
      if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
      return { headers, agent };
    },
  };
}

/** A kubeconfig this file does not read itself: loaded by client-node at the first request. */
function viaClientNode(server: string, paths: readonly string[], why: string): Credentials {
  let loaded: Promise<Credentials> | undefined;
  return {
    server,
    authenticate: async () => {
      loaded ??= (async () => {
        const { KubeConfig } = await import('@kubernetes/client-node');
        const kc = new KubeConfig();
        kc.loadFromFile(paths[0]!);
        for (const path of paths.slice(1)) {
          const more = new KubeConfig();
          more.loadFromFile(path);
          kc.mergeConfig(more, true);
        }
        return fromKubeConfig(kc);
      })();
      try {
        return await (await loaded).authenticate();
      } catch (err) {
        throw new Error(
          `kubeconfig ${paths.join(':')} (${why}; via @kubernetes/client-node): ${(err as Error).message}`,
        );
      }
    },
  };
}
