import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { createTestNamespace, eventually, kubectl } from '../harness/kube.ts';

/**
 * The CRDs as users meet them: kubectl against the real API server. Every invalid object must be
 * refused before the operator sees it, with a message that names the field.
 */
const kubeconfig = inject('kubeconfig');
const samples = join(import.meta.dirname, '..', '..', 'manifests', 'samples');

let ns: string;
beforeAll(async () => {
  ns = await createTestNamespace(kubeconfig, 'crds');
});
// Leave nothing for the operator suites that run next on the same control plane.
afterAll(async () => {
  await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false']);
});

const apply = (obj: unknown) => kubectl(kubeconfig, ['apply', '-n', ns, '-f', '-'], stringify(obj));

function template(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'AssessmentTemplate',
    metadata: { name },
    spec: { title: 'T', sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1' } }], ...spec },
  };
}

const aCheck = { name: 'customers-complete', sql: 'SELECT 1', expect: { noRows: true }, hint: 'Load them.' };
const aMongoCheck = {
  name: 'devices-loaded',
  mongo: { collection: 'device_totals', pipeline: '[{"$count": "n"}]' },
  expect: { rows: [['3']] },
  hint: 'Load every device type.',
};
const checkTask = (checks: unknown[]) => ({
  id: 'load',
  sandbox: 'db',
  prompt: 'Load it.',
  grader: { check: { checks } },
});

function assessment(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Assessment',
    metadata: { name },
    spec: {
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Jane Doe', email: 'jane@example.com' },
      ...spec,
    },
  };
}

describe('valid objects', () => {
  it('applies the samples and reads them back with defaults filled in', async () => {
    for (const file of ['data-engineer.yaml', 'backend-engineer.yaml', 'jane-doe.yaml']) {
      const res = await kubectl(kubeconfig, ['apply', '-n', ns, '-f', join(samples, file)]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
    }
    const got = JSON.parse(
      (await kubectl(kubeconfig, ['get', 'atpl', 'backend-engineer', '-n', ns, '-o', 'json'])).stdout,
    );
    expect(got.spec.sandboxes[0]).toEqual({
      name: 'db',
      postgres: { dataset: 'retail@1', version: '18', storage: '1Gi' }, // the default major
    });
    expect(got.spec.sandboxes[1].dataApi).toMatchObject({ pageSize: 50, faultRate: 0.05 });
    expect(got.spec.tasks[0].points).toBe(1);
    const de = JSON.parse(
      (await kubectl(kubeconfig, ['get', 'atpl', 'data-engineer', '-n', ns, '-o', 'json'])).stdout,
    );
    expect(de.spec).toEqual(
      expect.objectContaining({ duration: '4h', maxDuration: '8h', interviewGuide: 'data-engineering' }),
    );
    expect(de.spec.sandboxes.map((s: { name: string }) => s.name)).toEqual(['warehouse', 'events', 'source']);
  });

  it('accepts check tasks with sql checks on PostgreSQL and mongo checks on MongoDB', async () => {
    const res = await apply(
      template('both-checks', {
        sandboxes: [
          { name: 'db', postgres: { dataset: 'retail@1' } },
          { name: 'events', mongo: { dataset: 'retail@1' } },
        ],
        tasks: [checkTask([aCheck]), { ...checkTask([aMongoCheck]), id: 'load-events', sandbox: 'events' }],
      }),
    );
    expect(res.code, res.stderr).toBe(0);
  });

  it('defaults an Assessment: startPolicy Immediate', async () => {
    const res = await apply(assessment('defaults'));
    expect(res.code, res.stderr).toBe(0);
    const got = JSON.parse(
      (await kubectl(kubeconfig, ['get', 'asmt', 'defaults', '-n', ns, '-o', 'json'])).stdout,
    );
    expect(got.spec.startPolicy).toBe('Immediate');
  });

  it('accepts the longest name a namespace can be derived from (49 characters)', async () => {
    const res = await apply(assessment('a'.repeat(49)));
    expect(res.code, res.stderr).toBe(0);
  });

  it('shows Candidate, Template, Phase, Expires and Age in `kubectl get asmt`', async () => {
    const status = {
      status: {
        phase: 'Ready',
        namespace: 'epreuve-jane-doe-abcde',
        expiresAt: new Date(Date.now() + 3 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'SandboxesReady',
            message: 'all sandboxes ready',
            lastTransitionTime: '2026-01-01T00:00:00Z',
            observedGeneration: 1,
          },
        ],
      },
    };
    const patched = await kubectl(kubeconfig, [
      'patch',
      'asmt',
      'jane-doe',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(status),
    ]);
    expect(patched.code, patched.stderr).toBe(0);
    const res = await kubectl(kubeconfig, ['get', 'asmt', 'jane-doe', '-n', ns]);
    const [header, row] = res.stdout.trim().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['NAME', 'CANDIDATE', 'TEMPLATE', 'PHASE', 'EXPIRES', 'AGE']);
    expect(row).toMatch(/^jane-doe\s+Jane Doe\s+data-engineer\s+Ready\s+\S+\s+\S+$/);
    const wide = await kubectl(kubeconfig, ['get', 'asmt', 'jane-doe', '-n', ns, '-o', 'wide']);
    expect(wide.stdout).toContain('epreuve-jane-doe-abcde');
  });

  it('finds the kinds by short name and category', async () => {
    const res = await kubectl(kubeconfig, ['get', 'epreuve', '-n', ns, '-o', 'name']);
    expect(res.stdout).toContain('assessmenttemplate.epreuve.dev/data-engineer');
    expect(res.stdout).toContain('assessment.epreuve.dev/jane-doe');
  });

  it('documents every field for `kubectl explain`', async () => {
    await eventually(async () => {
      const res = await kubectl(kubeconfig, ['explain', 'assessment.spec']);
      expect(res.stdout).toContain('Desired state of one candidate assessment.');
      expect(res.stdout).toMatch(/startPolicy\s+<string>/);
      expect(res.stdout).toContain('When the clock starts');
    });
    const res = await kubectl(kubeconfig, ['explain', 'assessmenttemplate.spec.sandboxes.dataApi.faultRate']);
    expect(res.stdout).toContain('Share of requests');
  });
});

describe('invalid objects are refused with the field named', () => {
  const cases: Array<[string, () => unknown, RegExp[]]> = [
    [
      'bad duration syntax',
      () => template('bad-duration', { duration: '4 hours' }),
      [/spec\.duration/, /should match/],
    ],
    [
      'duration above maxDuration',
      () => template('too-long', { duration: '10h', maxDuration: '8h' }),
      [/spec\.duration/, /must not exceed maxDuration/],
    ],
    // hibernation (issue 17)
    [
      'hibernateFor above 720h',
      () => template('keep-long', { onExpiry: 'Hibernate', hibernateFor: '721h' }),
      [/spec\.hibernateFor/, /hibernateFor must be at most 720h/],
    ],
    [
      'hibernateFor without onExpiry Hibernate',
      () => template('keep-delete', { hibernateFor: '24h' }),
      [/spec\.hibernateFor/, /hibernateFor applies only with onExpiry: Hibernate/],
    ],
    [
      'unknown onExpiry',
      () => template('keep-archive', { onExpiry: 'Archive' }),
      [/spec\.onExpiry/, /Unsupported value/],
    ],
    [
      'unknown sandbox kind',
      () => template('unknown-kind', { sandboxes: [{ name: 'cache', redis: { dataset: 'retail@1' } }] }),
      [/spec\.sandboxes\[0\]\.redis|unknown field "spec\.sandboxes\[0\]\.redis"/],
    ],
    [
      'two kinds in one sandbox entry',
      () =>
        template('two-kinds', {
          sandboxes: [{ name: 'db', postgres: { dataset: 'retail@1' }, mongo: { dataset: 'retail@1' } }],
        }),
      [/spec\.sandboxes\[0\]/, /exactly one kind/],
    ],
    [
      'missing templateRef',
      () => ({ ...assessment('no-ref'), spec: { candidate: { name: 'A', email: 'a@b.co' } } }),
      [/spec\.templateRef: Required value/],
    ],
    [
      'a name too long to derive a namespace from',
      () => assessment('a'.repeat(50)),
      [/metadata\.name/, /at most 49 characters/],
    ],
    ['a name with a dot', () => assessment('jane.doe'), [/metadata\.name/, /DNS label/]],
    [
      'a malformed email',
      () => assessment('bad-email', { candidate: { name: 'Jane', email: 'jane-at-example.com' } }),
      [/spec\.candidate\.email/, /must be an email address/],
    ],
    [
      'duplicate sandbox names',
      () =>
        template('dupes', {
          sandboxes: [
            { name: 'db', postgres: { dataset: 'retail@1' } },
            { name: 'db', mongo: { dataset: 'retail@1' } },
          ],
        }),
      [/spec\.sandboxes\[1\]/, /Duplicate value/],
    ],
    [
      'negative resources',
      () => template('negative', { resources: { cpu: '-1', memory: '4Gi', storage: '5Gi' } }),
      [/spec\.resources\.cpu/, /positive Kubernetes quantity/],
    ],
    [
      'a resource that is not a quantity',
      () => template('not-quantity', { resources: { memory: 'lots' } }),
      [/spec\.resources\.memory/, /positive Kubernetes quantity/],
    ],
    [
      'a task on a sandbox that does not exist',
      () =>
        template('bad-task', {
          tasks: [{ id: 't', sandbox: 'nope', exercise: 'rank-customers-by-country' }],
        }),
      [/spec\.tasks/, /every task must name a sandbox/],
    ],
    [
      'a task with neither exercise nor prompt',
      () => template('empty-task', { tasks: [{ id: 't', sandbox: 'db' }] }),
      [/spec\.tasks\[0\]/, /either an exercise/],
    ],
    [
      'a check task with two checks of the same name',
      () => template('check-dupes', { tasks: [checkTask([aCheck, aCheck])] }),
      [/spec\.tasks\[0\]\.grader\.check\.checks\[1\]/, /Duplicate value/],
    ],
    [
      'a check task without checks',
      () => template('check-none', { tasks: [checkTask([])] }),
      [/spec\.tasks\[0\]\.grader\.check\.checks/, /at least 1 item/],
    ],
    [
      'a check without sql or mongo',
      () => template('check-no-sql', { tasks: [checkTask([{ ...aCheck, sql: undefined }])] }),
      [/spec\.tasks\[0\]\.grader\.check\.checks\[0\]/, /exactly one of sql or mongo/],
    ],
    [
      'a mongo check with sameAsSource',
      () =>
        template('check-mongo-source', {
          sandboxes: [{ name: 'events', mongo: { dataset: 'retail@1' } }],
          tasks: [
            {
              ...checkTask([{ ...aMongoCheck, expect: { sameAsSource: 'SELECT 1' } }]),
              sandbox: 'events',
            },
          ],
        }),
      [/spec\.tasks\[0\]\.grader\.check\.checks\[0\]\.expect\.sameAsSource/, /a mongo check expects noRows/],
    ],
    [
      'a check with two expectations',
      () =>
        template('check-two-expects', {
          tasks: [checkTask([{ ...aCheck, expect: { noRows: true, sameAsSource: 'SELECT 1' } }])],
        }),
      [/spec\.tasks\[0\]\.grader\.check\.checks\[0\]\.expect/, /exactly one of noRows/],
    ],
    [
      'an sql check task on a MongoDB sandbox',
      () =>
        template('check-on-mongo', {
          sandboxes: [{ name: 'events', mongo: { dataset: 'retail@1' } }],
          tasks: [{ ...checkTask([aCheck]), sandbox: 'events' }],
        }),
      [/spec\.tasks/, /sql checks on a postgres sandbox, mongo checks on a mongo sandbox/],
    ],
    [
      'a mongo check task on a PostgreSQL sandbox',
      () => template('mongo-check-on-pg', { tasks: [checkTask([aMongoCheck])] }),
      [/spec\.tasks/, /sql checks on a postgres sandbox, mongo checks on a mongo sandbox/],
    ],
    [
      'a check task on a data API sandbox',
      () =>
        template('check-on-api', {
          sandboxes: [{ name: 'db', dataApi: { dataset: 'retail@1' } }],
          tasks: [checkTask([aCheck])],
        }),
      [/spec\.tasks/, /check grader must name a postgres or mongo sandbox/],
    ],
    [
      'a grader with both check and sqlResult',
      () =>
        template('check-and-sql', {
          tasks: [{ ...checkTask([aCheck]), grader: { check: { checks: [aCheck] }, sqlResult: {} } }],
        }),
      [/spec\.tasks\[0\]\.grader/, /exactly one of sqlResult, mongoResult, check or manual/],
    ],
    [
      'a pool schedule window that opens and closes at the same time',
      () =>
        template('pool-window', {
          pool: { min: 0, schedule: [{ days: ['Mon'], from: '08:00', to: '08:00', min: 2 }] },
        }),
      [/spec\.pool\.schedule\[0\]/, /must not open and close at the same time/],
    ],
    [
      'a pool schedule time that is not HH:MM',
      () =>
        template('pool-clock', {
          pool: { min: 0, schedule: [{ days: ['Mon'], from: '8h', to: '18:00', min: 2 }] },
        }),
      [/spec\.pool\.schedule\[0\]\.from/, /should match/],
    ],
    [
      'a fault rate above 0.5',
      () =>
        template('faulty', {
          sandboxes: [{ name: 'api', dataApi: { dataset: 'retail@1', faultRate: 0.9 } }],
        }),
      [/spec\.sandboxes\[0\]\.dataApi\.faultRate/, /less than or equal to 0\.5/],
    ],
    [
      'an assessment longer than a week',
      () => assessment('forever', { duration: '200h' }),
      [/spec\.duration/, /at most 168h/],
    ],
    [
      'an unknown start policy',
      () => assessment('bad-policy', { startPolicy: 'Later' }),
      [/spec\.startPolicy/, /supported values/],
    ],
  ];

  it.each(cases)('%s', async (_label, build, patterns) => {
    const obj = build() as { kind: string; metadata: { name: string } };
    const res = await apply(obj);
    expect(res.code, res.stdout).not.toBe(0);
    for (const p of patterns) expect(res.stderr).toMatch(p);
    const exists = await kubectl(kubeconfig, ['get', obj.kind, obj.metadata.name, '-n', ns]);
    expect(exists.code).not.toBe(0);
  });

  it('templateRef changed after creation', async () => {
    expect((await apply(assessment('immutable'))).code).toBe(0);
    const res = await apply(assessment('immutable', { templateRef: { name: 'backend-engineer' } }));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/spec\.templateRef/);
    expect(res.stderr).toMatch(/templateRef is immutable/);
    const got = JSON.parse(
      (await kubectl(kubeconfig, ['get', 'asmt', 'immutable', '-n', ns, '-o', 'json'])).stdout,
    );
    expect(got.spec.templateRef.name).toBe('data-engineer');
  });

  it('a status the operator could not have written (unknown phase)', async () => {
    expect((await apply(assessment('bad-status'))).code).toBe(0);
    const res = await kubectl(kubeconfig, [
      'patch',
      'asmt',
      'bad-status',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Sleeping"}}',
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/status\.phase/);
  });
});
