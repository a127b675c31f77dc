import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import t from 'tap';
import { parseConfig } from '../../src/config/schema.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';
import type { RouteInput } from '../../src/registry/types.js';
import { masterApp, startMarathonSim } from '../helpers/marathon-sim.js';
import { masterRoute } from '../helpers/registry.js';
import { startAdmin } from './start-admin.js';

/**
 * The dashboard in a real browser (Debian's chromium, installed by .ci/run; playwright-core drives it and
 * never downloads a browser of its own). 2000 masters, like the cluster the issue describes.
 */
const chromiumPath = '/usr/bin/chromium';
const screenshot = join(import.meta.dirname, '..', 'artifacts', 'dashboard.png');

function cluster(): RouteInput[] {
  const routes: RouteInput[] = [];
  for (let i = 1; i <= 2000; i++) {
    const name = `master${String(i).padStart(4, '0')}`;
    const host = `10.0.${Math.floor(i / 200)}.${(i % 200) + 10}`;
    if (i % 211 === 0) {
      routes.push(masterRoute(name, {}, { state: 'starting', detail: 'task staging since 12:03' }));
    } else if (i % 97 === 0) {
      routes.push(masterRoute(name, {}, { state: 'unhealthy', detail: 'health check failing: HTTP 503' }));
    } else {
      routes.push(masterRoute(name, { http: [{ host, port: 31000 + i }], jnlp: [{ host, port: 33000 + i }], ssh: [{ host, port: 35000 + i }] }));
    }
  }
  routes.push(
    masterRoute('cjoc', { http: [{ host: '10.0.9.2', port: 8888 }] }, { kind: 'service', app: '/cjoc', source: 'marathon' }),
    masterRoute('mesos', { http: [{ host: '10.0.0.2', port: 5050 }] }, { kind: 'service', app: null, source: 'service', stripPrefix: true }),
  );
  return routes;
}

async function browser(t: { teardown(fn: () => unknown): void }): Promise<{ page: Page; requests: string[] }> {
  const profile = mkdtempSync(join(tmpdir(), 'ci-edge-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1360, height: 860 },
  });
  t.teardown(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  return { page, requests };
}

// The page's globals, as far as the functions below run in the page (this type-check has no DOM library).
// Functions, not strings: the page's CSP forbids eval, and playwright runs functions without it.
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
};
declare function getComputedStyle(e: unknown): { backgroundColor: string };

const visibleNames = (page: Page) =>
  page.evaluate(() => Array.from(document.querySelectorAll('#rows tr:not([hidden])'), (tr) => tr.dataset['name'] ?? ''));
const textIs = (page: Page, id: string, text: string) =>
  page.waitForFunction(([i, x]) => document.getElementById(i!)?.textContent === x, [id, text]);
const rowStateIs = (page: Page, name: string, state: string) =>
  page.waitForFunction(([n, s]) => document.querySelector(`#rows tr[data-name="${n}"]`)?.dataset['state'] === s, [name, state]);

t.test('dashboard: 2000 rows, the filter, live changes, a screenshot', async (t) => {
  const a = await startAdmin({ routes: cluster(), eventsThrottle: '100ms' });
  t.teardown(a.close);
  const { page, requests } = await browser(t);
  await page.goto(`${a.url}/`);

  await textIs(page, 'n-all', '2002');
  t.equal(await page.locator('#rows tr').count(), 2002, 'one row per route');
  t.equal(await page.textContent('#n-running'), String(2000 - 9 - 20 + 2));
  t.equal(await page.textContent('#n-starting'), '9');
  t.equal(await page.textContent('#n-unhealthy'), '20');
  t.equal(await page.textContent('#conn-text'), 'live');
  t.equal(await page.textContent('#leader'), 'none (file routes)');
  t.equal(await page.textContent('#fresh'), 'fresh');

  const first = page.locator('#rows tr').first();
  t.equal(await first.getAttribute('data-name'), 'cjoc', 'sorted by name');
  const row = page.locator('#rows tr[data-name="master0001"]');
  t.same(await row.locator('td').allInnerTexts(), [
    'master0001\n/master0001',
    'master',
    'running',
    'HTTP10.0.0.11:31001\nJNLP10.0.0.11:33001\nSSH10.0.0.11:35001',
    '/masters/master0001',
    (await row.locator('td.when').innerText()),
  ]);
  const unhealthy = page.locator('#rows tr[data-name="master0097"]');
  t.equal(await unhealthy.getAttribute('data-state'), 'unhealthy');
  t.match(await unhealthy.innerText(), /health check failing: HTTP 503/);
  t.equal(
    await unhealthy.locator('.pill').evaluate((e) => getComputedStyle(e).backgroundColor),
    'rgb(240, 68, 56)',
    'unhealthy is red',
  );

  await page.fill('#filter', 'master01');
  await textIs(page, 'shown', 'showing 100 of 2002');
  const names = await visibleNames(page);
  t.equal(names.length, 100);
  t.equal(names[0], 'master0100');
  t.equal(names[99], 'master0199');

  await page.fill('#filter', '10.0.3.15:');
  await textIs(page, 'shown', 'showing 1 of 2002');
  t.same(await visibleNames(page), ['master0605'], 'host:port finds the master');

  await page.fill('#filter', '');
  await page.click('button.count.unhealthy');
  await textIs(page, 'shown', 'showing 20 of 2002');
  await page.click('button.count.unhealthy');
  await textIs(page, 'shown', '2002 routes');

  // Live: a master moves and fails, one is removed, one appears, without a reload of the page.
  await page.fill('#filter', 'master015');
  await textIs(page, 'shown', 'showing 10 of 2002');
  a.source.set(masterRoute('master0150', {}, { state: 'unhealthy', detail: 'health check failing: connection refused' }));
  a.source.set(masterRoute('master0153', { http: [{ host: '10.0.7.7', port: 31999 }] }));
  a.source.remove('master0152');
  a.source.set(masterRoute('master0150b', {}, { state: 'starting', detail: 'deployment running' }));
  await rowStateIs(page, 'master0150', 'unhealthy');
  await textIs(page, 'n-all', '2002');
  t.equal(await page.locator('#rows tr[data-name="master0152"]').count(), 0, 'removed row is gone');
  t.match(await page.locator('#rows tr[data-name="master0153"]').innerText(), /10\.0\.7\.7:31999/);
  t.same(await visibleNames(page), [
    'master0150',
    'master0150b',
    'master0151',
    'master0153',
    'master0154',
    'master0155',
    'master0156',
    'master0157',
    'master0158',
    'master0159',
  ]);
  t.equal(await page.textContent('#n-unhealthy'), '21');
  t.equal(await page.textContent('#n-starting'), '10');

  mkdirSync(join(screenshot, '..'), { recursive: true });
  await page.screenshot({ path: screenshot });
  const origin = new URL(a.url).origin;
  t.same(requests.filter((u) => !u.startsWith(origin)), [], 'the page asked nothing of any other host');
});

t.test('dashboard live from the Marathon simulator: a task moves, an app goes, the leader shows', async (t) => {
  const sim = await startMarathonSim({
    apps: [
      masterApp('alpha', { host: '127.0.0.1', ports: { http: 31001, jnlp: 32001 } }),
      masterApp('beta', { host: '127.0.0.1', ports: { http: 31002 } }),
      masterApp('gamma', { host: '127.0.0.1', ports: { http: 31003 } }),
    ],
  });
  t.teardown(() => sim.close());
  const config = parseConfig({ marathon: { urls: [sim.url] }, admin: { listen: '127.0.0.1:0', eventsThrottle: '50ms' } });
  const gw = await startGateway(config, { log: silentLogger() });
  t.teardown(() => gw.close(0));
  const { page } = await browser(t);
  await page.goto(`http://127.0.0.1:${gw.addresses()['admin.admin']!.port}/`);
  await textIs(page, 'n-all', '3');
  await textIs(page, 'leader', sim.hostPort);
  t.equal(await page.textContent('#fresh'), 'fresh');
  t.equal(await page.locator('#rows tr[data-name="beta"] td').nth(4).innerText(), '/masters/beta');

  sim.moveTask('/masters/beta', { host: '127.0.0.1', ports: [31999] });
  await page.waitForFunction(() => /127\.0\.0\.1:31999/.test(document.querySelector('#rows tr[data-name="beta"]')?.textContent ?? ''));
  sim.removeApp('/masters/gamma');
  await textIs(page, 'n-all', '2');
  t.equal(await page.locator('#rows tr[data-name="gamma"]').count(), 0);
  t.same(await visibleNames(page), ['alpha', 'beta']);
});
