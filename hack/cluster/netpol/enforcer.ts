import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { Informer, type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';
import type { Logger } from 'pino';
import { buildRuleset, type Namespace, type NetworkPolicy, type Pod, transition } from './rules.ts';

export interface EnforcerOptions {
  /** Chain name prefix (EPNP); the main chain is jumped to from FORWARD and INPUT. */
  prefix?: string;
  /** Runs iptables elsewhere, e.g. ['ip', 'netns', 'exec', 'node'] for a node in a network namespace. */
  wrap?: string[];
  /** Coalesce bursts of events (a namespace of pods appearing at once) into one write. */
  debounceMs?: number;
  log: Logger;
}

/**
 * Watches Pods, Namespaces and NetworkPolicies and keeps the node's iptables rules equal to
 * buildRuleset(...): level-triggered (every sync recomputes from the caches), atomic (one
 * iptables-restore per change), idempotent (nothing is written when the rules did not change),
 * and clean (stale chains are deleted; stop() removes everything it added).
 */
export class NetpolEnforcer {
  private readonly prefix: string;
  private readonly wrap: string[];
  private readonly debounceMs: number;
  private readonly log: Logger;
  private readonly pods: Informer<Pod & KubeObject>;
  private readonly namespaces: Informer<Namespace & KubeObject>;
  private readonly policies: Informer<NetworkPolicy & KubeObject>;
  private timer?: NodeJS.Timeout;
  private applied = '';
  private owned = new Set<string>();
  private syncing: Promise<void> = Promise.resolve();
  /** Writes done so far (tests check that a steady state writes nothing). */
  writes = 0;

  constructor(client: KubeClient, opts: EnforcerOptions) {
    this.prefix = opts.prefix ?? 'EPNP';
    this.wrap = opts.wrap ?? [];
    this.debounceMs = opts.debounceMs ?? 50;
    this.log = opts.log;
    const log = opts.log;
    this.pods = new Informer(client, { type: resourceFor('v1', 'Pod'), log });
    this.namespaces = new Informer(client, { type: resourceFor('v1', 'Namespace'), log });
    this.policies = new Informer(client, { type: resourceFor('networking.k8s.io/v1', 'NetworkPolicy'), log });
    const changed = {
      add: () => this.schedule(),
      update: () => this.schedule(),
      delete: () => this.schedule(),
    };
    for (const inf of [this.pods, this.namespaces, this.policies] as Informer<KubeObject>[]) inf.on(changed);
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.ensureJumps();
    for (const inf of [this.pods, this.namespaces, this.policies] as Informer<KubeObject>[])
      void inf.run(signal);
    await Promise.all([this.pods.waitForSync(), this.namespaces.waitForSync(), this.policies.waitForSync()]);
    this.schedule(0);
  }

  /** Resolves once the rules reflect the caches as they are now. */
  async settled(): Promise<void> {
    if (this.timer) this.schedule(0);
    await new Promise((r) => setTimeout(r, 0));
    await this.syncing;
  }

  private schedule(delay = this.debounceMs): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.syncing = this.syncing
        .then(() => this.sync())
        .catch((err) => this.log.error({ err }, 'netpol sync failed'));
    }, delay);
  }

  private async sync(): Promise<void> {
    const ruleset = buildRuleset(this.policies.list(), this.pods.list(), this.namespaces.list(), this.prefix);
    const stale = [...this.owned].filter((c) => !ruleset.chains.includes(c));
    if (ruleset.text === this.applied && stale.length === 0) return;
    const text = transition(ruleset, this.owned);
    await this.restore(text);
    this.applied = ruleset.text;
    this.owned = new Set(ruleset.chains);
    this.writes++;
    this.log.info({ chains: ruleset.chains.length, removed: stale.length }, 'network policies applied');
  }

  private restore(text: string): Promise<void> {
    const [cmd, ...args] = [...this.wrap, 'iptables-restore', '--noflush', '-w', '5'];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd!, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`iptables-restore exited ${code}: ${stderr.trim()}`)),
      );
      child.stdin.end(text);
    });
  }

  private iptables(args: string[]) {
    const [cmd, ...rest] = [...this.wrap, 'iptables', '-w', '5', ...args];
    return promisify(execFile)(cmd!, rest);
  }

  private async ensureJumps(): Promise<void> {
    await this.restore(`*filter\n:${this.prefix} - [0:0]\nCOMMIT\n`);
    for (const hook of ['FORWARD', 'INPUT']) {
      const exists = await this.iptables(['-C', hook, '-j', this.prefix]).then(
        () => true,
        () => false,
      );
      if (!exists) await this.iptables(['-I', hook, '1', '-j', this.prefix]);
    }
  }

  /** Removes every rule and chain this enforcer added (make down, test teardown). */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.syncing;
    for (const hook of ['FORWARD', 'INPUT'])
      await this.iptables(['-D', hook, '-j', this.prefix]).catch(() => {});
    const chains = [this.prefix, ...[...this.owned].filter((c) => c !== this.prefix)];
    await this.restore(
      `*filter\n${chains.map((c) => `:${c} - [0:0]`).join('\n')}\n${chains.map((c) => `-X ${c}`).join('\n')}\nCOMMIT\n`,
    );
    this.owned.clear();
    this.applied = '';
  }
}
