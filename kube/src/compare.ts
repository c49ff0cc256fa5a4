/**
 * Whether every field of `desired` is present with the same value in `actual`. Fields the server
 * adds (defaults, status, managedFields) are ignored, so a server-side applied object compares
 * equal to what was applied and steady state writes nothing. Arrays must match element-wise.
 */
export function isSubset(desired: unknown, actual: unknown): boolean {
  if (desired === actual) return true;
  if (desired === null || actual === null || typeof desired !== 'object' || typeof actual !== 'object') {
    // The API server may render numbers in strings fields (and back) for int-or-string values.
    return typeof desired !== 'object' && typeof actual !== 'object' && String(desired) === String(actual);
  }
  if (Array.isArray(desired)) {
    return (
      Array.isArray(actual) &&
      desired.length === actual.length &&
      desired.every((d, i) => isSubset(d, actual[i]))
    );
  }
  if (Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => {
    if (v === undefined) return true;
    // An empty object we ask for (emptyDir: {}, podSelector: {}) may come back as {} or be absent.
    if (isEmptyObject(v) && (a[k] === undefined || isEmptyObject(a[k]))) return true;
    return k in a && isSubset(v, a[k]);
  });
}

const isEmptyObject = (v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
