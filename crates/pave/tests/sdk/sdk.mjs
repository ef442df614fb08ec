// Official flag SDKs, unchanged, against a running `pave serve`. Driven by
// crates/pave/tests/it/sdk.rs: `node sdk.mjs CASES.json` with PAVE_URL and PAVE_CLIENT_TOKEN.
//
// 1. unleash-client (Unleash's Node server SDK), polling: every case through isEnabled and
//    getVariant; then it flushes its metrics to Pave.
// 2. @openfeature/server-sdk with @openfeature/ofrep-provider: every case through
//    getBooleanDetails / getStringDetails (OFREP single-flag evaluations).
// 3. unleash-proxy-client (Unleash's browser SDK) against /api/frontend with a frontend token
//    (PAVE_FRONTEND_TOKEN): every case through updateContext + isEnabled / getVariant.
// 4. unleash-client in streaming mode: prints READY, then waits for WATCH_FLAG to turn off
//    (the test flips it) and reports how long after READY the SDK saw it.
//
// Prints one JSON line and exits 0 when every check held, 1 otherwise, 2 on timeout.

import { readFileSync } from 'node:fs';
import { initialize } from 'unleash-client';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { UnleashClient, InMemoryStorageProvider } from 'unleash-proxy-client';

const url = process.env.PAVE_URL;
const token = process.env.PAVE_CLIENT_TOKEN;
const frontendToken = process.env.PAVE_FRONTEND_TOKEN;
const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const watchFlag = cases.watch;

setTimeout(() => {
  console.log(JSON.stringify({ error: 'timed out after 60 s' }));
  process.exit(2);
}, 60_000).unref();

function unleashContext(c) {
  return { userId: c.userId, sessionId: c.sessionId, properties: c.properties ?? {} };
}

function ofrepContext(c) {
  return { targetingKey: c.userId, ...(c.properties ?? {}) };
}

function synced(client) {
  return new Promise((resolve, reject) => {
    client.once('synchronized', resolve);
    client.once('error', reject);
  });
}

const report = {
  unleash: { checked: 0, mismatches: [] },
  ofrep: { checked: 0, mismatches: [] },
  frontend: { checked: 0, mismatches: [] },
  streaming: {},
};

// 1. Unleash, polling.
const unleash = initialize({
  url: `${url}/api`,
  appName: 'pave-sdk-test',
  instanceId: 'sdk-test-1',
  customHeaders: { Authorization: token },
  refreshInterval: 1000,
  metricsInterval: 1000,
});
unleash.on('warn', () => {});
await synced(unleash);
for (const c of cases.cases) {
  const ctx = unleashContext(c.context);
  const enabled = unleash.isEnabled(c.flag, ctx);
  const variant = unleash.getVariant(c.flag, ctx);
  report.unleash.checked += 1;
  if (enabled !== c.enabled || (c.variant !== undefined && variant.name !== c.variant)) {
    report.unleash.mismatches.push({ case: c, enabled, variant: variant.name });
  }
}
await unleash.destroyWithFlush();

// 2. OpenFeature with the OFREP provider.
await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: url, headers: { Authorization: `Bearer ${token}` } }));
const of = OpenFeature.getClient();
for (const c of cases.cases) {
  const ctx = ofrepContext(c.context);
  report.ofrep.checked += 1;
  if (c.variant !== undefined && c.variant !== 'disabled') {
    const d = await of.getStringDetails(c.flag, 'default', ctx);
    if (d.variant !== c.variant || d.errorCode) {
      report.ofrep.mismatches.push({ case: c, variant: d.variant, value: d.value, reason: d.reason, error: d.errorCode });
    }
  } else {
    const d = await of.getBooleanDetails(c.flag, !c.enabled, ctx);
    if (d.value !== c.enabled || d.errorCode) {
      report.ofrep.mismatches.push({ case: c, value: d.value, reason: d.reason, error: d.errorCode, message: d.errorMessage });
    }
  }
}
const missing = await of.getBooleanDetails('no-such-flag', true, {});
report.ofrep.unknownFlag = { value: missing.value, errorCode: missing.errorCode };
if (missing.errorCode !== 'FLAG_NOT_FOUND' || missing.value !== true) {
  report.ofrep.mismatches.push({ unknownFlag: report.ofrep.unknownFlag });
}
await OpenFeature.close();

// 3. The browser SDK, as a web page would use it (its in-memory storage stands in for the
//    browser's localStorage); it fetches /api/frontend for each new context.
const browser = new UnleashClient({
  url: `${url}/api/frontend`,
  clientKey: frontendToken,
  appName: 'pave-sdk-browser',
  storageProvider: new InMemoryStorageProvider(),
  refreshInterval: 0,
  disableMetrics: true,
});
await browser.start();
for (const c of cases.cases) {
  await browser.updateContext(unleashContext(c.context));
  const enabled = browser.isEnabled(c.flag);
  const variant = browser.getVariant(c.flag).name;
  report.frontend.checked += 1;
  if (enabled !== c.enabled || (c.variant !== undefined && variant !== c.variant)) {
    report.frontend.mismatches.push({ case: c, enabled, variant });
  }
}
browser.stop();

// 4. Unleash, streaming: the test turns WATCH_FLAG off after READY.
if (watchFlag) {
  const streaming = initialize({
    url: `${url}/api`,
    appName: 'pave-sdk-stream',
    instanceId: 'sdk-test-2',
    customHeaders: { Authorization: token },
    disableMetrics: true,
    refreshInterval: 60_000,
    experimentalMode: { type: 'streaming' },
  });
  streaming.on('warn', () => {});
  await synced(streaming);
  report.streaming.onBefore = streaming.isEnabled(watchFlag.flag, unleashContext(watchFlag.context));
  console.log('READY');
  const t0 = Date.now();
  while (streaming.isEnabled(watchFlag.flag, unleashContext(watchFlag.context)) && Date.now() - t0 < 10_000) {
    await new Promise((r) => setTimeout(r, 5));
  }
  report.streaming.seenOffAfterMs = Date.now() - t0;
  report.streaming.offAfter = !streaming.isEnabled(watchFlag.flag, unleashContext(watchFlag.context));
  streaming.destroy();
}

const ok =
  report.unleash.mismatches.length === 0 &&
  report.ofrep.mismatches.length === 0 &&
  report.frontend.mismatches.length === 0 &&
  report.frontend.checked > 0 &&
  report.unleash.checked > 0 &&
  (!watchFlag || (report.streaming.onBefore && report.streaming.offAfter));
console.log(JSON.stringify(report));
process.exit(ok ? 0 : 1);
