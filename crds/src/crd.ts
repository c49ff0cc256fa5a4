import { z } from 'zod';
import { assessmentRootRules, assessmentSpec, assessmentStatus } from './assessment.ts';
import type { CelRule } from './common.ts';
import { GROUP, KINDS, VERSION } from './names.ts';
import { submissionSpec, submissionStatus } from './submission.ts';
import { assessmentTemplateSpec, assessmentTemplateStatus, templateRootRules } from './template.ts';

/** The subset of OpenAPI v3 a structural CRD schema uses. */
export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  items?: OpenApiSchema;
  enum?: unknown[];
  default?: unknown;
  [key: string]: unknown;
}

/** Keys zod may emit that a structural schema must not carry (the API server rejects them). */
const FORBIDDEN = [
  '$schema',
  '$ref',
  '$defs',
  'definitions',
  'id',
  '$id',
  'patternProperties',
  'uniqueItems',
];
const SAFE_INT = Number.MAX_SAFE_INTEGER;

/**
 * zod → structural OpenAPI v3 schema for a CRD. Unions are rejected on purpose: the API server
 * needs one type per node, so alternatives are modelled as optional fields plus CEL rules.
 */
export function toStructuralSchema(schema: z.ZodType): OpenApiSchema {
  const json = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    reused: 'inline',
    unrepresentable: 'throw',
  }) as Record<string, unknown>;
  return clean(json, '');
}

function clean(node: Record<string, unknown>, path: string): OpenApiSchema {
  for (const key of ['anyOf', 'oneOf', 'allOf', 'not']) {
    if (key in node)
      throw new Error(`${path || '<root>'}: ${key} is not structural; use optional fields and CEL`);
  }
  if (typeof node.type !== 'string') throw new Error(`${path || '<root>'}: every node needs a single type`);
  const out: OpenApiSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (FORBIDDEN.includes(key)) continue;
    if (key === 'additionalProperties' && value === false) continue;
    if ((key === 'minimum' || key === 'maximum') && Math.abs(value as number) >= SAFE_INT) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Record<string, unknown>>).map(([name, child]) => [
          name,
          clean(child, `${path}.${name}`),
        ]),
      );
      continue;
    }
    if (key === 'items') {
      out.items = clean(value as Record<string, unknown>, `${path}[]`);
      continue;
    }
    out[key] = value;
  }
  if (out.type === 'object' && !out.properties) {
    throw new Error(`${path}: an object needs properties (or x-kubernetes-preserve-unknown-fields)`);
  }
  return out;
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  rootRules?: CelRule[];
  printerColumns: PrinterColumn[];
}

export function customResourceDefinition(def: KindDefinition) {
  const root: OpenApiSchema = {
    type: 'object',
    description: def.description,
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string', description: 'Versioned schema of this representation of an object.' },
      kind: { type: 'string', description: 'REST resource this object represents.' },
      metadata: { type: 'object' },
      spec: toStructuralSchema(def.spec),
      status: toStructuralSchema(def.status),
    },
  };
  if (def.rootRules?.length) root['x-kubernetes-validations'] = def.rootRules;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'epreuve' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ['epreuve'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}

export const assessmentTemplateCrd = () =>
  customResourceDefinition({
    kind: KINDS.AssessmentTemplate.kind,
    plural: KINDS.AssessmentTemplate.plural,
    singular: 'assessmenttemplate',
    shortNames: ['atpl'],
    description:
      'AssessmentTemplate describes an assessment once — sandboxes, tasks, time box, resources — so that one Assessment per candidate can be created from it.',
    spec: assessmentTemplateSpec,
    status: assessmentTemplateStatus,
    rootRules: templateRootRules,
    printerColumns: [
      { name: 'Title', type: 'string', jsonPath: '.spec.title' },
      { name: 'Duration', type: 'string', jsonPath: '.spec.duration' },
      { name: 'Max', type: 'string', jsonPath: '.spec.maxDuration', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });

export const assessmentCrd = () =>
  customResourceDefinition({
    kind: KINDS.Assessment.kind,
    plural: KINDS.Assessment.plural,
    singular: 'assessment',
    shortNames: ['asmt'],
    description:
      "Assessment is one candidate's sitting of an AssessmentTemplate: the operator provisions an isolated namespace with seeded sandboxes, and deletes it when the time is up.",
    spec: assessmentSpec,
    status: assessmentStatus,
    rootRules: assessmentRootRules,
    printerColumns: [
      { name: 'Candidate', type: 'string', jsonPath: '.spec.candidate.name' },
      { name: 'Template', type: 'string', jsonPath: '.spec.templateRef.name' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      // A string, not a date: kubectl prints future dates as <invalid>.
      { name: 'Expires', type: 'string', jsonPath: '.status.expiresAt' },
      { name: 'Namespace', type: 'string', jsonPath: '.status.namespace', priority: 1 },
      // Hibernated (issue 17): when the stopped sandboxes are deleted; shown by `kubectl get asmt -o wide`.
      { name: 'Hibernated-Until', type: 'string', jsonPath: '.status.hibernatedUntil', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });

export const submissionCrd = () =>
  customResourceDefinition({
    kind: KINDS.Submission.kind,
    plural: KINDS.Submission.plural,
    singular: 'submission',
    // Not `sub`: OLM's Subscription and Knative Eventing's Subscription already answer to it.
    shortNames: ['epsub'],
    description:
      'Submission is one candidate answer to one task of an Assessment, with its grade. Owned by the Assessment.',
    spec: submissionSpec,
    status: submissionStatus,
    printerColumns: [
      { name: 'Assessment', type: 'string', jsonPath: '.spec.assessmentRef.name' },
      { name: 'Task', type: 'string', jsonPath: '.spec.task' },
      { name: 'Pass', type: 'boolean', jsonPath: '.status.pass' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });

/** Every CRD Épreuve installs, in install order. */
export const allCrds = () => [assessmentTemplateCrd(), assessmentCrd(), submissionCrd()];
