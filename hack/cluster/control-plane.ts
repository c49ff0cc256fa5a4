import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { ensureKubeBinaries, findBinary, HACK_DIR } from './assets.ts';
import { freePort, Supervisor } from './supervisor.ts';

export { freePort } from './supervisor.ts';

/**
 * A real Kubernetes control plane on loopback: etcd (data on tmpfs), kube-apiserver and
 * kube-controller-manager — the last so namespaces really finish deleting and garbage collection
 * really happens, which envtest cannot do. Ports are random, certificates are made per run.
 */
export interface ControlPlaneOptions {
  /** How long each component may take to become healthy (KUBEBUILDER_CONTROLPLANE_START_TIMEOUT). */
  startTimeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. ['--authorization-mode=Node,RBAC'], or a function of the PKI directory. */
  apiServerFlags?: string[] | ((pki: string) => string[]);
  /** Skip kube-controller-manager (faster, envtest-like); defaults to running it. */
  withoutControllerManager?: boolean;
  /** More client certificates from the cluster CA (hack/pki.sh arguments), e.g. a node's kubelet. */
  pkiComponents?: string[];
  /**
   * Where kube-apiserver listens and what it advertises (the `kubernetes` Service's endpoint).
   * 127.0.0.1 by default; a cluster with pods uses the node's bridge address, which pods can reach.
   */
  address?: string;
}

// A /16: the provisioning benchmark creates thousands of Services.
export const SERVICE_CIDR = '10.0.0.0/16';
export const SERVICE_IP = '10.0.0.1';

export class ControlPlane {
  readonly kubeconfigPath: string;
  apiServerUrl = '';
  private etcdUrl = '';
  private readonly processes = new Supervisor('epreuve-cp');

  private readonly options: ControlPlaneOptions;

  constructor(options: ControlPlaneOptions = {}) {
    this.options = options;
    this.kubeconfigPath = join(this.dir, 'admin.kubeconfig');
  }

  /** Run directory, on tmpfs (cheap fsyncs for etcd, nothing left on disk). */
  get dir(): string {
    return this.processes.dir;
  }

  get pids(): number[] {
    return this.processes.pids;
  }

  async start(): Promise<void> {
    const timeout =
      this.options.startTimeoutMs ?? startTimeoutMs(process.env.KUBEBUILDER_CONTROLPLANE_START_TIMEOUT);
    ensureKubeBinaries(['etcd', 'kube-apiserver', 'kube-controller-manager']);
    const pki = join(this.dir, 'pki');
    const address = this.options.address ?? '127.0.0.1';
    execFileSync(
      join(HACK_DIR, 'pki.sh'),
      [pki, SERVICE_IP, 'kube-controller-manager', ...(this.options.pkiComponents ?? [])],
      {
        stdio: 'pipe',
        env: { ...process.env, EXTRA_SANS: address === '127.0.0.1' ? '' : `IP:${address}` },
      },
    );
    try {
      await this.startEtcd(timeout);
      await this.startApiServer(pki, address, timeout);
      if (!this.options.withoutControllerManager) await this.startControllerManager(pki, timeout);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startEtcd(timeout: number): Promise<void> {
    const [client, peer] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${client}`;
    this.spawn('etcd', findBinary('etcd'), [
      '--name=epreuve',
      `--data-dir=${join(this.dir, 'etcd')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=epreuve=http://127.0.0.1:${peer}`,
      '--initial-cluster-state=new',
      '--log-level=warn',
    ]);
    await this.waitHealthy('etcd', timeout, async () => {
      const res = await fetch(`${url}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });
    this.etcdUrl = url;
  }

  private async startApiServer(pki: string, address: string, timeout: number): Promise<void> {
    const port = await freePort();
    this.apiServerUrl = `https://${address}:${port}`;
    const extra =
      typeof this.options.apiServerFlags === 'function'
        ? this.options.apiServerFlags(pki)
        : (this.options.apiServerFlags ?? []);
    // Some flags add up when repeated (--authorization-mode): an extra one replaces the default.
    const overridden = new Set(extra.map((f) => f.split('=')[0]));
    const defaults = [
      `--etcd-servers=${this.etcdUrl}`,
      `--secure-port=${port}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--tls-cert-file=${pki}/apiserver.crt`,
      `--tls-private-key-file=${pki}/apiserver.key`,
      `--client-ca-file=${pki}/ca.crt`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki}/sa.pub`,
      `--service-account-signing-key-file=${pki}/sa.key`,
      '--allow-privileged=true',
      // Fewer, bigger watch caches start faster on 2 cores; nothing here needs more.
      '--profiling=false',
      '--v=1',
    ];
    this.spawn('kube-apiserver', findBinary('kube-apiserver'), [
      ...defaults.filter((f) => !overridden.has(f.split('=')[0])),
      ...extra,
    ]);
    writeFileSync(this.kubeconfigPath, kubeconfig(this.apiServerUrl, pki, 'admin'));
    const ca = readFileSync(`${pki}/ca.crt`);
    await this.waitHealthy('kube-apiserver', timeout, () => httpsOk(`${this.apiServerUrl}/readyz`, ca));
  }

  private async startControllerManager(pki: string, timeout: number): Promise<void> {
    const port = await freePort();
    const config = join(this.dir, 'kube-controller-manager.kubeconfig');
    writeFileSync(config, kubeconfig(this.apiServerUrl, pki, 'kube-controller-manager'));
    this.spawn('kube-controller-manager', findBinary('kube-controller-manager'), [
      `--kubeconfig=${config}`,
      `--authentication-kubeconfig=${config}`,
      `--authorization-kubeconfig=${config}`,
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki}/sa.key`,
      `--root-ca-file=${pki}/ca.crt`,
      `--cluster-signing-cert-file=${pki}/ca.crt`,
      `--cluster-signing-key-file=${pki}/ca.key`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--v=1',
    ]);
    await this.waitHealthy('kube-controller-manager', timeout, () =>
      httpsOk(`https://127.0.0.1:${port}/healthz`, undefined),
    );
  }

  private spawn(name: string, binary: string, args: string[]): void {
    this.processes.spawn(name, binary, args);
  }

  private waitHealthy(name: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
    return this.processes.waitHealthy(name, timeoutMs, probe);
  }

  /** Stops every component (SIGTERM, then SIGKILL after 10 s) and removes the run directory. */
  stop(): Promise<void> {
    return this.processes.stop();
  }
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * envtest's KUBEBUILDER_CONTROLPLANE_START_TIMEOUT: a Go duration ("90s", "2m", "1m30s"), 90 s when
 * unset. Hand-written: a dozen lines, where a dependency would only parse this one variable.
 */
export function startTimeoutMs(value: string | undefined): number {
  if (value === undefined || value === '') return 90_000;
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value)
    throw new Error(
      `KUBEBUILDER_CONTROLPLANE_START_TIMEOUT: "${value}" is not a Go duration (e.g. "90s", "2m", "1m30s")`,
    );
  return parts.reduce((ms, [, n, unit]) => ms + Number(n) * DURATION_UNITS_MS[unit!]!, 0);
}

/** A kubeconfig for `user`, authenticated by its client certificate from the run's PKI. */
export function kubeconfig(server: string, pki: string, user: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'epreuve-local', cluster: { server, 'certificate-authority': `${pki}/ca.crt` } }],
    users: [
      {
        name: user,
        user: { 'client-certificate': `${pki}/${user}.crt`, 'client-key': `${pki}/${user}.key` },
      },
    ],
    contexts: [{ name: 'epreuve-local', context: { cluster: 'epreuve-local', user } }],
    'current-context': 'epreuve-local',
  });
}

function httpsOk(url: string, ca: Buffer | undefined): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, rejectUnauthorized: ca !== undefined, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
