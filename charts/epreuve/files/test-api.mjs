// `helm test` (templates/tests/api.yaml): the API answers /healthz and /readyz through its
// Service. Retries for 30 s: a release just installed may still be getting its endpoints.
const base = process.env.API_URL;
// TIMEOUT_SECONDS: the chart leaves it unset; the chart tests shorten it for a failing case.
const deadline = Date.now() + Number(process.env.TIMEOUT_SECONDS ?? 30) * 1_000;
for (const path of ['/healthz', '/readyz']) {
  for (;;) {
    let problem;
    try {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
      if (res.status === 200) {
        console.log(`${base}${path}: 200`);
        break;
      }
      problem = `${res.status} ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      problem = err.cause?.message ?? err.message;
    }
    if (Date.now() > deadline) {
      console.error(`${base}${path}: ${problem}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}
