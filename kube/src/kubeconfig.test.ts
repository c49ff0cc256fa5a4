import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeClient } from './client.ts';
import {
  type Credentials,
  fromKubeConfig,
  fromKubeconfigFiles,
  inCluster,
  loadCredentials,
} from './kubeconfig.ts';

/** A CA, a server certificate for 127.0.0.1 and a client certificate (CN=alice), all from openssl. */
function pki(dir: string) {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  for (const [name, subj, ext] of [
    ['server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:api.test'],
    ['client', '/CN=alice', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    run('req', ...ec, '-subj', subj, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    run(
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'],
      ...['-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
    );
  }
}

const dir = mkdtempSync(join(tmpdir(), 'epreuve-kubeconfig-'));
const b64 = (file: string) => readFileSync(join(dir, file)).toString('base64');
let server: Server;
let url: string;

beforeAll(async () => {
  pki(dir);
  // Echoes what authenticated the request: the Authorization header and the client certificate's CN.
  server = createServer(
    {
      cert: readFileSync(join(dir, 'server.crt')),
      key: readFileSync(join(dir, 'server.key')),
      ca: readFileSync(join(dir, 'ca.crt')),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          authorization: req.headers.authorization ?? null,
          cn: (req.socket as TLSSocket).authorized ? peer.subject?.CN : null,
        }),
      );
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function whoami(c: Credentials) {
  const { headers, agent } = await c.authenticate();
  const body = await new Promise<string>((resolve, reject) =>
    request(`${c.server}/whoami`, { headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve(text)).on('error', reject);
    })
      .on('error', reject)
      .end(),
  );
  return JSON.parse(body) as { authorization: string | null; cn: string | null };
}

function kubeconfigFile(
  name: string,
  cluster: Record<string, unknown>,
  user: Record<string, unknown> | undefined,
  at = dir,
) {
  const path = join(at, name);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'test',
      clusters: [{ name: 'c', cluster }],
      users: user ? [{ name: 'u', user }] : [],
      contexts: [{ name: 'test', context: { cluster: 'c', ...(user ? { user: 'u' } : {}) } }],
    }),
  );
  return path;
}

describe('fromKubeconfigFiles', () => {
  it('authenticates with a token, trusting the inline CA', async () => {
    const path = kubeconfigFile(
      'token.yaml',
      { server: `${url}/`, 'certificate-authority-data': b64('ca.crt') },
      { token: 'abc' },
    );
    const c = fromKubeconfigFiles([path]);
    expect(c.server).toBe(url);
    expect(await whoami(c)).toEqual({ authorization: 'Bearer abc', cn: null });
  });

  it('authenticates with a client certificate and key from files relative to the kubeconfig, and a CA file', async () => {
    const path = kubeconfigFile(
      'cert.yaml',
      { server: url, 'certificate-authority': 'ca.crt' },
      { 'client-certificate': 'client.crt', 'client-key': join(dir, 'client.key') },
    );
    expect(await whoami(fromKubeconfigFiles([path]))).toEqual({ authorization: null, cn: 'alice' });
  });

  it('authenticates with inline client certificate data', async () => {
    const path = kubeconfigFile(
      'cert-data.yaml',
      { server: url, 'certificate-authority-data': b64('ca.crt') },
      { 'client-certificate-data': b64('client.crt'), 'client-key-data': b64('client.key') },
    );
    expect(await whoami(fromKubeconfigFiles([path]))).toEqual({ authorization: null, cn: 'alice' });
  });

  it('reads a tokenFile again at each authenticate (rotated tokens)', async () => {
    writeFileSync(join(dir, 'token'), 'first\n');
    const path = kubeconfigFile(
      'token-file.yaml',
      { server: url, 'certificate-authority-data': b64('ca.crt') },
      { tokenFile: 'token' },
    );
    const c = fromKubeconfigFiles([path]);
    expect((await whoami(c)).authorization).toBe('Bearer first');
    writeFileSync(join(dir, 'token'), 'second\n');
    expect((await whoami(c)).authorization).toBe('Bearer second');
  });

  it('sends basic auth', async () => {
    const path = kubeconfigFile(
      'basic.yaml',
      { server: url, 'certificate-authority-data': b64('ca.crt') },
      { username: 'bob', password: 'pw' },
    );
    expect((await whoami(fromKubeconfigFiles([path]))).authorization).toBe(
      `Basic ${Buffer.from('bob:pw').toString('base64')}`,
    );
  });

  it('refuses a server it cannot verify without the CA, and accepts it with insecure-skip-tls-verify', async () => {
    const strict = kubeconfigFile('no-ca.yaml', { server: url }, { token: 't' });
    await expect(whoami(fromKubeconfigFiles([strict]))).rejects.toThrow(
      /self-signed certificate|unable to verify/,
    );
    const insecure = kubeconfigFile(
      'insecure.yaml',
      { server: url, 'insecure-skip-tls-verify': true },
      { token: 't' },
    );
    expect((await whoami(fromKubeconfigFiles([insecure]))).authorization).toBe('Bearer t');
  });

  it('verifies the server under its tls-server-name when one is set', async () => {
    const named = (name: string) =>
      fromKubeconfigFiles([
        kubeconfigFile(
          `sni-${name}.yaml`,
          { server: url, 'certificate-authority-data': b64('ca.crt'), 'tls-server-name': name },
          { token: 'sni' },
        ),
      ]);
    expect((await whoami(named('api.test'))).authorization).toBe('Bearer sni');
    await expect(whoami(named('other.test'))).rejects.toThrow(/other\.test.*(not in the cert|altnames)/);
  });

  it('merges several files as kubectl does: the first to name an entry wins, entries resolve files from their own file', async () => {
    const other = join(dir, 'other');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'ca.pem'), readFileSync(join(dir, 'ca.crt')));
    // The first file has the context and user; the cluster (and its relative CA file) comes from the second.
    const first = join(dir, 'first.yaml');
    writeFileSync(
      first,
      stringify({
        'current-context': 'test',
        contexts: [{ name: 'test', context: { cluster: 'c', user: 'u' } }],
        users: [{ name: 'u', user: { token: 'from-first' } }],
      }),
    );
    const second = kubeconfigFile(
      'second.yaml',
      { server: url, 'certificate-authority': 'ca.pem' },
      { token: 'from-second' },
      other,
    );
    expect((await whoami(fromKubeconfigFiles([first, second]))).authorization).toBe('Bearer from-first');
  });

  it.each([
    ['no current-context', { clusters: [] }, /kubeconfig .*: no current-context/],
    ['a missing context', { 'current-context': 'x' }, /current-context "x" is not in contexts/],
    [
      'a missing cluster',
      { 'current-context': 'x', contexts: [{ name: 'x', context: { cluster: 'gone' } }] },
      /cluster "gone" of context "x" is not in clusters/,
    ],
    [
      'a cluster without server',
      {
        'current-context': 'x',
        contexts: [{ name: 'x', context: { cluster: 'c' } }],
        clusters: [{ name: 'c', cluster: {} }],
      },
      /cluster "c" has no server/,
    ],
    ['a list', ['a'], /not a mapping/],
  ])('refuses %s, naming it', (_what, doc, message) => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, stringify(doc));
    expect(() => fromKubeconfigFiles([path])).toThrow(message);
  });

  it('refuses a file that is not YAML or is missing, naming the file', () => {
    const path = join(dir, 'broken.yaml');
    writeFileSync(path, 'clusters: [unclosed\n');
    expect(() => fromKubeconfigFiles([path])).toThrow(/kubeconfig .*broken\.yaml: not YAML/);
    expect(() => fromKubeconfigFiles([join(dir, 'absent.yaml')])).toThrow(
      /kubeconfig .*absent\.yaml: ENOENT/,
    );
  });

  it('runs an exec plugin through client-node, imported only then', async () => {
    // The plugin prints an ExecCredential, as kubelogin or aws-iam-authenticator would.
    const credential = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: { token: 'from-exec' },
    });
    const path = kubeconfigFile(
      'exec.yaml',
      { server: url, 'certificate-authority-data': b64('ca.crt') },
      {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: process.execPath,
          args: ['-e', `process.stdout.write(${JSON.stringify(credential)})`],
          interactiveMode: 'Never',
        },
      },
    );
    const c = fromKubeconfigFiles([path]);
    expect(c.server).toBe(url);
    expect(await whoami(c)).toEqual({ authorization: 'Bearer from-exec', cn: null });
  });

  it('goes through the proxy-url (client-node builds the proxy agent, imported only then)', async () => {
    // An HTTP CONNECT proxy that records the tunnels it opened.
    const tunnels: string[] = [];
    const sockets: Array<{ destroy(): void }> = [];
    const proxy = createHttpServer();
    proxy.on('connect', (req, client, head) => {
      tunnels.push(req.url!);
      sockets.push(client);
      const [host, port] = req.url!.split(':');
      const upstream = connect(Number(port), host!, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const path = kubeconfigFile(
        'proxied.yaml',
        {
          server: url,
          'certificate-authority-data': b64('ca.crt'),
          'proxy-url': `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        },
        { token: 'via-proxy' },
      );
      expect((await whoami(fromKubeconfigFiles([path]))).authorization).toBe('Bearer via-proxy');
      expect(tunnels).toEqual([url.replace('https://', '')]);
    } finally {
      // Tunnels leave the server's connection tracking: they are ended here, or close() would wait.
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('says which kubeconfig and why client-node was used when a plugin fails', async () => {
    const path = kubeconfigFile(
      'exec-fails.yaml',
      { server: url, 'certificate-authority-data': b64('ca.crt') },
      {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: process.execPath,
          args: ['-e', 'process.exit(3)'],
          interactiveMode: 'Never',
        },
      },
    );
    await expect(fromKubeconfigFiles([path]).authenticate()).rejects.toThrow(
      /exec-fails\.yaml \(user "u" has an exec or auth-provider plugin; via @kubernetes\/client-node\)/,
    );
  });
});

describe('inCluster', () => {
  const sa = join(dir, 'serviceaccount');
  beforeAll(() => {
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'ca.crt'), readFileSync(join(dir, 'ca.crt')));
    writeFileSync(join(sa, 'token'), 'sa-token-1');
  });

  it("uses the service account's token (read again at each authenticate) and CA", async () => {
    const port = (server.address() as AddressInfo).port;
    const c = inCluster({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) }, sa);
    expect(c.server).toBe(url);
    expect((await whoami(c)).authorization).toBe('Bearer sa-token-1');
    writeFileSync(join(sa, 'token'), 'sa-token-2');
    expect((await whoami(c)).authorization).toBe('Bearer sa-token-2');
  });

  it('brackets an IPv6 service host', () => {
    const c = inCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa);
    expect(c.server).toBe('https://[fd00::1]:443');
  });

  it('refuses an environment without the service port, naming it', () => {
    expect(() => inCluster({ KUBERNETES_SERVICE_HOST: '10.0.0.1' }, sa)).toThrow(/KUBERNETES_SERVICE_PORT/);
  });
});

describe('loadCredentials', () => {
  const sa = join(dir, 'sa-load');
  const home = join(dir, 'home');
  beforeAll(() => {
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'ca.crt'), readFileSync(join(dir, 'ca.crt')));
    writeFileSync(join(sa, 'token'), 't');
    mkdirSync(join(home, '.kube'), { recursive: true });
  });
  const inPod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it('takes $KUBECONFIG first, then ~/.kube/config, then the service account, else localhost:8080', () => {
    const env = kubeconfigFile('env.yaml', { server: 'https://from-env:6443' }, undefined);
    const empty = join(dir, 'empty-home');
    expect(loadCredentials({ env: { ...inPod, KUBECONFIG: env }, home, serviceAccountDir: sa }).server).toBe(
      'https://from-env:6443',
    );
    // In a list, a missing file is skipped (as kubectl does); alone, it is an error naming it.
    const absent = join(dir, 'absent.yaml');
    expect(
      loadCredentials({ env: { KUBECONFIG: `${absent}:${env}` }, home, serviceAccountDir: sa }).server,
    ).toBe('https://from-env:6443');
    expect(() => loadCredentials({ env: { KUBECONFIG: absent }, home, serviceAccountDir: sa })).toThrow(
      /absent\.yaml: ENOENT/,
    );
    kubeconfigFile('config', { server: 'https://from-home:6443' }, undefined, join(home, '.kube'));
    expect(loadCredentials({ env: inPod, home, serviceAccountDir: sa }).server).toBe(
      'https://from-home:6443',
    );
    expect(loadCredentials({ env: inPod, home: empty, serviceAccountDir: sa }).server).toBe(
      'https://10.96.0.1:443',
    );
    expect(loadCredentials({ env: {}, home: empty, serviceAccountDir: sa }).server).toBe(
      'http://localhost:8080',
    );
    expect(loadCredentials({ env: inPod, home: empty, serviceAccountDir: join(dir, 'no-sa') }).server).toBe(
      'http://localhost:8080',
    );
  });
});

describe('fromKubeConfig and KubeClient', () => {
  it('authenticates with a client-node KubeConfig a caller loaded, and KubeClient takes either', async () => {
    const path = kubeconfigFile(
      'kc.yaml',
      { server: url, 'certificate-authority-data': b64('ca.crt') },
      { token: 'kc-token' },
    );
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    expect((await whoami(fromKubeConfig(kc))).authorization).toBe('Bearer kc-token');
    for (const source of [kc, fromKubeconfigFiles([path])]) {
      const client = new KubeClient(source, { retry: false });
      expect(await client.request('GET', '/whoami')).toEqual({ authorization: 'Bearer kc-token', cn: null });
    }
  });

  it('refuses a KubeConfig without a current cluster', () => {
    expect(() => fromKubeConfig(new KubeConfig())).toThrow(/no current cluster/);
  });
});
