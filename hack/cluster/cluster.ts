import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HACK_DIR } from './assets.ts';
import { ControlPlane, SERVICE_CIDR } from './control-plane.ts';
import {
  type HostNetworkState,
  leftovers,
  NODE_NETWORK,
  setUpHostNetwork,
  unmountBelow,
} from './host-network.ts';
import { NODE_PKI_COMPONENTS, nodeApiServerFlags, startNode, stopNode } from './node.ts';
import { Supervisor } from './supervisor.ts';

/**
 * A real single-node Kubernetes cluster on this machine, for the e2e tier and `make up`: the
 * control plane of the integration tier (etcd, kube-apiserver, kube-controller-manager) plus a node
 * (containerd + runc, CNI bridge, kubelet, kube-proxy, kube-scheduler, CoreDNS, a NetworkPolicy
 * enforcer and a local volume provisioner). Everything lives in run directories on tmpfs and on
 * the node's own bridge; stop() — or scrub() from another process after a crash — removes
 * processes, mounts, network namespaces, interfaces, iptables rules and cgroups.
 */
export interface ClusterState {
  pid: number;
  controlPlaneDir: string;
  nodeDir: string;
  kubeconfig: string;
  apiServerUrl: string;
  network?: HostNetworkState;
  ready: boolean;
}

/** Where a running cluster describes itself, for `make down` and `make up` run from other shells. */
export const STATE_FILE = process.env.EPREUVE_CLUSTER_STATE ?? '/run/epreuve/cluster.json';

export interface StartOptions {
  /** Per-component start timeout. */
  timeoutMs?: number;
  /** Image archives to import; defaults to everything hack/images/build.sh builds. */
  images?: string[];
  progress?: (message: string) => void;
}

export class LocalCluster {
  readonly controlPlane = new ControlPlane({
    address: NODE_NETWORK.gateway,
    pkiComponents: NODE_PKI_COMPONENTS,
    apiServerFlags: nodeApiServerFlags,
  });
  private readonly node = new Supervisor('epreuve-node');
  private network?: HostNetworkState;

  get kubeconfigPath(): string {
    return this.controlPlane.kubeconfigPath;
  }

  async start(opts: StartOptions = {}): Promise<void> {
    const progress = opts.progress ?? (() => {});
    const timeoutMs = opts.timeoutMs ?? 180_000;
    if (process.getuid?.() !== 0)
      throw new Error('the local cluster needs root (containerd, iptables, mounts)');
    if (existsSync(STATE_FILE)) {
      const other = readState();
      if (other && isAlive(other.pid))
        throw new Error(
          `a local cluster is already running (pid ${other.pid}, ${STATE_FILE}): \`make down\` stops it`,
        );
    }
    const images = opts.images ?? buildImages(progress);
    try {
      progress('setting up the node network');
      this.network = setUpHostNetwork(SERVICE_CIDR);
      this.writeState(false);
      progress('starting the control plane');
      await this.controlPlane.start();
      this.writeState(false);
      await startNode({
        processes: this.node,
        dir: this.node.dir,
        pki: join(this.controlPlane.dir, 'pki'),
        apiServerUrl: this.controlPlane.apiServerUrl,
        adminKubeconfig: this.kubeconfigPath,
        serviceCidr: SERVICE_CIDR,
        timeoutMs,
        images,
        progress,
      });
      this.writeState(true);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await stopNode(this.node, this.node.dir, this.network, SERVICE_CIDR);
    await this.controlPlane.stop();
    if (readState()?.pid === process.pid) rmSync(STATE_FILE, { force: true });
  }

  /** What this cluster left on the machine (empty after stop()). */
  leftovers(): string[] {
    return [
      ...leftovers(this.node.dir, this.network),
      ...(existsSync(this.controlPlane.dir) ? [this.controlPlane.dir] : []),
    ];
  }

  private writeState(ready: boolean): void {
    const state: ClusterState = {
      pid: process.pid,
      controlPlaneDir: this.controlPlane.dir,
      nodeDir: this.node.dir,
      kubeconfig: this.kubeconfigPath,
      apiServerUrl: this.controlPlane.apiServerUrl,
      network: this.network,
      ready,
    };
    mkdirSync(dirname(STATE_FILE), { recursive: true });
    writeFileSync(`${STATE_FILE}.tmp`, JSON.stringify(state, null, 2));
    execFileSync('mv', [`${STATE_FILE}.tmp`, STATE_FILE]);
  }
}

export function readState(): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The image archives the cluster runs (built and cached by hack/images/build.sh). */
export function buildImages(progress: (message: string) => void): string[] {
  progress('building images (cached after the first run)');
  const out = execFileSync(join(HACK_DIR, 'images', 'build.sh'), [], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.toString().trim().split('\n').filter(Boolean);
}

/**
 * Removes a cluster whose process died without stopping it: kills what still runs from its run
 * directories, then the same host cleanup as stop(). Idempotent; returns what is still left.
 */
export async function scrub(state: ClusterState): Promise<string[]> {
  for (const dir of [state.nodeDir, state.controlPlaneDir])
    try {
      execFileSync('pkill', ['-9', '-f', dir], { stdio: 'ignore' });
    } catch {
      // nothing left running
    }
  await stopNode(undefined, state.nodeDir, state.network, SERVICE_CIDR).catch(() => {});
  unmountBelow(state.controlPlaneDir);
  rmSync(state.controlPlaneDir, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
  return leftovers(state.nodeDir, state.network);
}
