import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ensureKubeBinaries, findBinary, goTool, HACK_DIR } from './assets.ts';
import { kubeconfig } from './control-plane.ts';
import {
  cleanHostNetwork,
  type HostNetworkState,
  NODE_NETWORK,
  removeKubeletCgroups,
  unmountBelow,
} from './host-network.ts';
import { freePort, type Supervisor, sleep } from './supervisor.ts';

const execFileAsync = promisify(execFile);
const NODE_DIR = join(HACK_DIR, 'node');

export const NODE_NAME = 'epreuve-node';
/** The cluster DNS Service (kube-system/kube-dns), inside the control plane's Service range. */
export const DNS_IP = '10.0.0.10';

/** Client certificates the node's processes use (hack/pki.sh arguments). */
export const NODE_PKI_COMPONENTS = [
  `kubelet=/O=system:nodes/CN=system:node:${NODE_NAME}`,
  'kube-scheduler',
  'kube-proxy',
  'epreuve-netpol',
  'epreuve-volumes',
  'kube-apiserver-kubelet-client',
];

/** kube-apiserver flags a control plane needs for a node: Node authorization and kubelet access. */
export function nodeApiServerFlags(pki: string): string[] {
  return [
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    // The node's name is not in any DNS: reach kubelet (logs, exec, port-forward) by its address.
    '--kubelet-preferred-address-types=InternalIP',
    `--kubelet-client-certificate=${pki}/kube-apiserver-kubelet-client.crt`,
    `--kubelet-client-key=${pki}/kube-apiserver-kubelet-client.key`,
  ];
}

/**
 * containerd 2.x, its runc shim and ctr, built from the Go module proxy (hack/tools/containerd):
 * Kubernetes has announced the end of containerd 1.x support (Debian ships 1.6). Debian's runc
 * stays (see hack/cluster/README.md).
 */
export function containerdTools(): { containerd: string; ctr: string; binDir: string } {
  const containerd = goTool('containerd');
  const binDir = dirname(containerd);
  return { containerd, ctr: join(binDir, 'ctr'), binDir };
}

/** Fills {{NAME}} placeholders; an unknown one is an error, not a silent blank. */
export function render(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`no value for {{${key}}}`);
    return String(values[key]);
  });
}

export interface NodeContext {
  processes: Supervisor;
  dir: string;
  pki: string;
  apiServerUrl: string;
  adminKubeconfig: string;
  serviceCidr: string;
  timeoutMs: number;
  /** docker-archive tarballs to import into containerd before kubelet starts (hack/images/build.sh). */
  images: string[];
  progress: (message: string) => void;
}

/**
 * One node on this machine as host processes: containerd (private root, state and socket), kubelet,
 * kube-proxy, kube-scheduler, and two small agents of our own — the NetworkPolicy enforcer and the
 * local volume provisioner — plus CoreDNS as a kube-system pod. The host network must be set up
 * first (host-network.ts): the API server listens on the bridge address so pods reach it.
 */
export async function startNode(ctx: NodeContext): Promise<void> {
  ensureKubeBinaries(['kubelet', 'kube-proxy', 'kube-scheduler', 'kubectl']);
  const { dir, pki } = ctx;
  const values = {
    DIR: dir,
    PKI: pki,
    BRIDGE: NODE_NETWORK.bridge,
    POD_CIDR: NODE_NETWORK.podCidr,
    GATEWAY: NODE_NETWORK.gateway,
    SERVICE_CIDR: ctx.serviceCidr,
    DNS_IP,
    NODE_NAME,
  };
  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const template = (file: string, extra: Record<string, string | number> = {}) =>
    render(readFileSync(join(NODE_DIR, file), 'utf8'), { ...values, ...extra });
  for (const d of ['cni/net.d', 'cni/ipam', 'kubelet', 'pod-logs', 'volumes'])
    mkdirSync(join(dir, d), { recursive: true });
  for (const user of ['kubelet', 'kube-scheduler', 'kube-proxy', 'epreuve-netpol', 'epreuve-volumes'])
    write(`${user}.kubeconfig`, kubeconfig(ctx.apiServerUrl, pki, user));
  // Pods resolve cluster names only: no upstream resolvers from the host.
  write('resolv.conf', 'nameserver 127.0.0.1\noptions ndots:1\n');
  write('cni/net.d/10-epreuve.conflist', template('10-epreuve.conflist'));

  // containerd, then the images (nothing can be pulled here).
  ctx.progress('starting containerd');
  const { containerd, ctr, binDir } = containerdTools();
  const containerdSock = join(dir, 'containerd', 'containerd.sock');
  ctx.processes.spawn(
    'containerd',
    containerd,
    ['--config', write('containerd.toml', template('containerd.toml'))],
    // containerd looks its shim up on PATH first: ours, not Debian's 1.6 one in /usr/bin.
    { env: { ...process.env, PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}` } },
  );
  await ctx.processes.waitHealthy('containerd', ctx.timeoutMs, async () => {
    await execFileAsync(ctr, ['-a', containerdSock, 'version']);
    return true;
  });
  for (const archive of ctx.images) {
    ctx.progress(`importing ${archive.split('/').pop()}`);
    await execFileAsync(
      ctr,
      ['-a', containerdSock, '-n', 'k8s.io', 'images', 'import', '--no-unpack', archive],
      {
        maxBuffer: 16 << 20,
      },
    );
  }

  ctx.progress('starting kubelet, kube-proxy, kube-scheduler');
  const [kubeletHealth, proxyHealth, proxyMetrics, schedulerPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  ctx.processes.spawn('kubelet', findBinary('kubelet'), [
    `--config=${write('kubelet.yaml', template('kubelet.yaml', { HEALTHZ_PORT: kubeletHealth }))}`,
    `--kubeconfig=${join(dir, 'kubelet.kubeconfig')}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${NODE_NETWORK.gateway}`,
    `--root-dir=${join(dir, 'kubelet')}`,
    `--cert-dir=${join(dir, 'kubelet', 'pki')}`,
    '--v=1',
  ]);
  ctx.processes.spawn('kube-proxy', findBinary('kube-proxy'), [
    `--config=${write('kube-proxy.yaml', template('kube-proxy.yaml', { HEALTHZ_PORT: proxyHealth, METRICS_PORT: proxyMetrics }))}`,
    '--v=1',
  ]);
  const schedulerConfig = join(dir, 'kube-scheduler.kubeconfig');
  ctx.processes.spawn('kube-scheduler', findBinary('kube-scheduler'), [
    `--kubeconfig=${schedulerConfig}`,
    `--authentication-kubeconfig=${schedulerConfig}`,
    `--authorization-kubeconfig=${schedulerConfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${schedulerPort}`,
    '--v=1',
  ]);
  await ctx.processes.waitHealthy('kubelet', ctx.timeoutMs, () =>
    httpOk(`http://127.0.0.1:${kubeletHealth}/healthz`),
  );
  await ctx.processes.waitHealthy('kube-proxy', ctx.timeoutMs, () =>
    httpOk(`http://127.0.0.1:${proxyHealth}/healthz`),
  );

  // The node's own objects and agents.
  const node = (env: Record<string, string>) => ({ env: { ...process.env, ...env } });
  ctx.processes.spawn('netpol', process.execPath, [join(HACK_DIR, 'cluster', 'netpol', 'main.ts')], {
    ...node({ KUBECONFIG: join(dir, 'epreuve-netpol.kubeconfig') }),
  });
  ctx.processes.spawn(
    'volumes',
    process.execPath,
    [join(HACK_DIR, 'cluster', 'volumes', 'main.ts'), join(dir, 'volumes'), NODE_NAME],
    node({ KUBECONFIG: join(dir, 'epreuve-volumes.kubeconfig') }),
  );
  const manifests = ['rbac.yaml', 'storage-class.yaml', 'coredns.yaml']
    .map((f) => template(f))
    .join('\n---\n');
  await kubectl(ctx, ['apply', '--server-side', '-f', write('node-objects.yaml', manifests)]);

  ctx.progress('waiting for the node to be Ready and cluster DNS to answer');
  await ctx.processes.waitHealthy('kubelet', ctx.timeoutMs, async () => {
    const out = await kubectl(ctx, [
      'get',
      'node',
      NODE_NAME,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);
    return out.trim() === 'True';
  });
  await ctx.processes.waitHealthy('kubelet', ctx.timeoutMs, async () => {
    const out = await kubectl(ctx, [
      '-n',
      'kube-system',
      'get',
      'deployment',
      'coredns',
      '-o',
      'jsonpath={.status.readyReplicas}',
    ]);
    return out.trim() === '1';
  });
}

export async function kubectl(ctx: Pick<NodeContext, 'adminKubeconfig'>, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(
    findBinary('kubectl'),
    ['--kubeconfig', ctx.adminKubeconfig, ...args],
    {
      maxBuffer: 64 << 20,
    },
  );
  return stdout;
}

/**
 * Stops the node's containers and processes and undoes what they did to the host. Kubelet goes
 * first so it does not restart what we stop; containers are killed through containerd so their
 * shims exit; then mounts, network namespaces, veths, iptables rules (kube-proxy --cleanup), and
 * cgroups. Every step tolerates a half-started node.
 */
export async function stopNode(
  processes: Supervisor | undefined,
  dir: string,
  net: HostNetworkState | undefined,
  serviceCidr: string,
): Promise<void> {
  await processes?.stopOne('kubelet');
  const sock = join(dir, 'containerd', 'containerd.sock');
  if (existsSync(sock)) {
    const bin = containerdTools().ctr;
    const ctr = (...args: string[]) =>
      execFileAsync(bin, ['-a', sock, '-n', 'k8s.io', ...args]).then(
        (r) => r.stdout,
        () => '',
      );
    const tasks = (await ctr('tasks', 'ls', '-q')).split('\n').filter(Boolean);
    await Promise.all(tasks.map((t) => ctr('tasks', 'kill', '-s', 'SIGKILL', t)));
    for (let i = 0; i < 50 && tasks.length > 0; i++) {
      const running = (await ctr('tasks', 'ls')).split('\n').filter((l) => / RUNNING$/.test(l.trim()));
      if (running.length === 0) break;
      await sleep(100);
    }
    await Promise.all(tasks.map((t) => ctr('tasks', 'delete', '-f', t)));
  }
  await processes?.stop({ keepDir: true });
  // Shims left by a crashed containerd name the run directory on their command line.
  try {
    execFileSync('pkill', ['-9', '-f', `containerd-shim.*${dir}`], { stdio: 'ignore' });
  } catch {
    // none left
  }
  unmountBelow(dir);
  cleanHostNetwork(net, serviceCidr);
  removeKubeletCgroups();
  // Never into another filesystem: anything still mounted below stays untouched.
  execFileSync('rm', ['-rf', '--one-file-system', dir]);
}

function httpOk(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok);
}
