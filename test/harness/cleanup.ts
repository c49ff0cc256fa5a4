import { afterAll } from 'vitest';
import { deleteTestNamespaces } from './kube.ts';

// A setup file: its afterAll runs after the test file's own (hooks unwind like a stack), once the
// file's operator and API have stopped.
afterAll(deleteTestNamespaces);
