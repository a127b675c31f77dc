import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { envOverrides } from '../../src/config/loader.js';
import type { Config, ListenAddress } from '../../src/config/types.js';
import { app, effectiveConfig, root } from './app.js';

const dockerfile = readFileSync(join(root, 'deploy/Dockerfile'), 'utf8');

/** Which configuration key each named port is the listener of. */
const listenerOf: Record<string, (c: Config) => ListenAddress | undefined> = {
  http: (c) => c.http?.listen,
  https: (c) => c.http?.https?.listen,
  ssh: (c) => c.ssh?.listen,
  admin: (c) => c.admin?.listen,
};

t.test('ci-edge.json parses and runs N instances, one per host', async (t) => {
  t.equal(app.id, '/ci-edge');
  t.ok(app.instances >= 2, 'at least two instances behind one DNS name');
  t.same(app.constraints, [['hostname', 'UNIQUE']]);
  t.equal(app.container.type, 'DOCKER');
  t.same(app.networks, [{ mode: 'host' }]);
  t.equal(app.requirePorts, true, 'the fixed ports DNS and the ELB point at');
});

t.test('every port name is a listener of the configuration, on the port the configuration gives it', async (t) => {
  const config = effectiveConfig();
  t.same(app.portDefinitions.map((p) => p.name), ['http', 'https', 'ssh', 'admin']);
  for (const p of app.portDefinitions) {
    const listen = listenerOf[p.name]?.(config);
    t.ok(listen, `${p.name} is a listener`);
    t.equal(listen?.port, p.port, `${p.name} port`);
    t.equal(p.protocol, 'tcp');
  }
  const health = app.healthChecks[0]!;
  t.same([health.path, app.portDefinitions[health.portIndex]?.name], ['/health', 'admin'], 'health check on /health of the admin port');
  t.equal(health.protocol, 'MESOS_HTTP');
  t.same(app.readinessChecks.map((r) => [r.path, r.portName, r.httpStatusCodesForReady]), [['/ready', 'admin', [200]]]);
  t.ok(app.taskKillGracePeriodSeconds * 1000 > config.shutdown.grace, 'Marathon waits longer than ci-edge drains');
});

t.test('every environment variable is a configuration override; every secret is defined and used', async (t) => {
  for (const name of Object.keys(app.env)) t.ok(name in envOverrides, `${name} is in envOverrides`);
  const config = effectiveConfig();
  t.same(config.marathon?.urls, ['http://marathon-1.example.com:8080', 'http://marathon-2.example.com:8080', 'http://marathon-3.example.com:8080']);
  t.same(config.marathon?.auth, { token: 'secret-marathonToken' }, 'the token comes from a secret');
  const volumes = new Map(app.container.volumes.map((v) => [v.containerPath, v.secret]));
  t.same(config.ssh?.hostKeys, ['/run/secrets/ci-edge/ssh_host_ed25519_key']);
  for (const path of [...config.ssh!.hostKeys, ...config.http!.https!.certs.flatMap((c) => [c.cert, c.key])]) {
    t.ok(volumes.get(path), `${path} is a secret volume`);
  }
  const used = [...volumes.values(), ...Object.values(app.env).flatMap((v) => (typeof v === 'string' ? [] : [v.secret]))];
  t.same(new Set(used), new Set(Object.keys(app.secrets)), 'secrets referenced = secrets defined');
});

t.test('the Dockerfile: multi-stage, tini as PID 1, uid 1000, HEALTHCHECK, the ports and config the app uses', async (t) => {
  t.equal(dockerfile.match(/^FROM /gm)?.length, 2, 'build and runtime stages');
  t.match(dockerfile, /npm ci --omit=dev/, 'runtime has production dependencies only');
  t.match(dockerfile, /apt-get install -y --no-install-recommends tini/);
  t.match(dockerfile, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/dist\/src\/main.js"\]$/m);
  t.match(dockerfile, /^USER 1000:1000$/m);
  t.match(dockerfile, /^HEALTHCHECK .*CMD \["node", "\/app\/deploy\/healthcheck.mjs"\]$/m);
  const exposed = /^EXPOSE (.*)$/m.exec(dockerfile)?.[1]?.split(/\s+/).map(Number);
  t.same(exposed, app.portDefinitions.map((p) => p.port));
  const configPath = app.args[app.args.indexOf('--config') + 1];
  t.match(dockerfile, new RegExp(`^COPY deploy/marathon/ci-edge.yaml ${configPath}$`, 'm'), 'the file the app runs with is in the image');
});

t.test('the image healthcheck script answers 0 while /health answers, 1 when nothing listens', async (t) => {
  const server = createServer((req, res) => res.writeHead(req.url === '/health' ? 200 : 404).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const run = (listen: string) =>
    new Promise<number | null>((resolve) => {
      const env = { ...process.env, CI_EDGE_ADMIN_LISTEN: listen };
      spawn(process.execPath, [join(root, 'deploy/healthcheck.mjs')], { env, stdio: 'ignore' }).on('exit', resolve);
    });
  t.equal(await run(`0.0.0.0:${port}`), 0, 'a wildcard address is asked on loopback');
  await new Promise<void>((r) => server.close(() => r()));
  t.equal(await run(`127.0.0.1:${port}`), 1);
});
