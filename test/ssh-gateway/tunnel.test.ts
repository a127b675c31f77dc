/**
 * Issue #4 with real OpenSSH on both ends: `ssh` → ci-edge (ssh2) → `sshd` playing master1's SSH server.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/log.js';
import { masterRoute, testRegistry } from '../helpers/registry.js';
import { baseSshOptions, proxyCommand, runSsh, SSH, startSshd, startTestSshGateway, writeJumpConfig, type Sshd, type TestGateway } from '../helpers/sshd.js';

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: createLogger({ destination: stream, level: 'info' }) };
}

function viaProxy(sshd: Sshd, gw: TestGateway, target = 'master1'): string[] {
  const id = sshd.identity.path;
  return [...baseSshOptions(id), '-o', `ProxyCommand=${proxyCommand(gw.port, id)}`, `${sshd.user}@${target}`];
}

async function setup(t: Test) {
  const sshd = await startSshd();
  t.teardown(() => sshd.close());
  const { registry, source } = await testRegistry([masterRoute('master1', { ssh: [{ host: '127.0.0.1', port: sshd.port }] })]);
  t.teardown(() => registry.close());
  const sink = logSink();
  const gw = await startTestSshGateway(registry, {}, sink.log);
  t.teardown(() => gw.close());
  return { sshd, registry, source, gw, lines: sink.lines };
}

t.test('ProxyCommand "tunnel %h": the command runs, output and exit status come back, one audit line', async (t) => {
  const { sshd, gw, lines } = await setup(t);
  const r = await runSsh([...viaProxy(sshd, gw), 'echo hello from $(whoami); echo oops >&2; exit 3']);
  t.equal(r.stdout.toString(), `hello from ${sshd.user}\n`);
  t.equal(r.stderr, 'oops\n');
  t.equal(r.code, 3);
  // The audit line is written when the tunnel ends, which may be just after the client saw its exit.
  for (let i = 0; i < 100 && !lines.some((l) => l['msg'] === 'ssh tunnel'); i++) await new Promise((r) => setTimeout(r, 20));
  const audit = lines.filter((l) => l['msg'] === 'ssh tunnel');
  t.equal(audit.length, 1);
  const a = audit[0]!;
  t.match(a, {
    via: 'exec',
    client: /^127\.0\.0\.1:\d+$/,
    user: sshd.user,
    auth: 'none',
    key: null,
    target: 'master1',
    route: 'master1',
    endpoint: `127.0.0.1:${sshd.port}`,
    status: 0,
  });
  t.ok((a['bytesUp'] as number) > 1000 && (a['bytesDown'] as number) > 1000, 'bytes both ways are counted');
  t.ok(['client closed', 'master closed'].includes(a['end'] as string), `ended: ${String(a['end'])}`);
  t.equal(typeof a['ms'], 'number');
  t.equal((await gw.metrics.sshTunnelsOpened.get()).values[0]?.value, 1);
  t.equal((await gw.metrics.sshTunnelsOpen.get()).values[0]?.value, 0);
});

t.test('the gateway host name forms: master1.<ssh domain> and master1.<domain>', async (t) => {
  const { sshd, gw } = await setup(t);
  for (const host of ['master1.ci.example.com', 'MASTER1.pse.example.com']) {
    const r = await runSsh([...viaProxy(sshd, gw, host), 'echo ok']);
    t.equal(r.stdout.toString(), 'ok\n', host);
    t.equal(r.code, 0, host);
  }
});

t.test('ssh -J (direct-tcpip): the command runs, output and exit status come back', async (t) => {
  const { sshd, gw } = await setup(t);
  const cfg = writeJumpConfig(sshd.dir, sshd.identity.path);
  const r = await runSsh(['-F', cfg, '-J', `127.0.0.1:${gw.port}`, `${sshd.user}@master1`, 'echo via jump; exit 4']);
  t.equal(r.stdout.toString(), 'via jump\n');
  t.equal(r.code, 4);
  const r2 = await runSsh(['-F', cfg, '-J', `127.0.0.1:${gw.port}`, '-p', String(sshd.port), `${sshd.user}@master1.ci.example.com`, 'echo own port']);
  t.equal(r2.stdout.toString(), 'own port\n', "the master's own SSH port is accepted too");
  t.equal(r2.code, 0);
});

t.test('16 MiB both ways through the tunnel, intact (sha256)', async (t) => {
  const { sshd, gw } = await setup(t);
  const data = randomBytes(16 * 1024 * 1024);
  const file = join(sshd.dir, 'payload');
  writeFileSync(file, data);
  const sum = createHash('sha256').update(data).digest('hex');
  const up = await runSsh([...viaProxy(sshd, gw), 'sha256sum'], { inputFile: file, timeoutMs: 60_000 });
  t.equal(up.stdout.toString().split(' ')[0], sum, 'upload');
  t.equal(up.code, 0);
  const down = await runSsh([...viaProxy(sshd, gw), `cat ${file}`], { timeoutMs: 60_000 });
  t.equal(down.stdout.length, data.length);
  t.equal(createHash('sha256').update(down.stdout).digest('hex'), sum, 'download');
  t.equal(down.code, 0);
  const bytes = await gw.metrics.sshBytes.get();
  const up16 = bytes.values.find((v) => v.labels['direction'] === 'up')?.value ?? 0;
  t.ok(up16 > 16 * 1024 * 1024, 'sshBytes{direction=up} counts the upload');
});

t.test('byte counters move while a tunnel is open, not only when it ends', async (t) => {
  const { sshd, gw } = await setup(t);
  // The master sends 1 MiB, then the session stays open until its stdin closes.
  const proc = spawn(SSH, [...viaProxy(sshd, gw), 'head -c 1048576 /dev/zero; cat > /dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => proc.kill('SIGKILL'));
  let received = 0;
  proc.stdout.on('data', (d: Buffer) => (received += d.length));
  const down = async () => (await gw.metrics.sshBytes.get()).values.find((v) => v.labels['direction'] === 'down')?.value ?? 0;
  for (let i = 0; i < 200 && (received < 1048576 || (await down()) < 1048576); i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(received, 1048576, 'the client got the bytes');
  t.ok((await down()) >= 1048576, 'sshBytes{direction=down} already counts them');
  t.equal(proc.exitCode, null, 'while the tunnel is still open');
  proc.stdin.end();
  await new Promise((r) => proc.once('exit', r));
});

t.test('a master that moves to another port is found at its new place on the next tunnel', async (t) => {
  const { sshd, gw, source } = await setup(t);
  const first = await runSsh([...viaProxy(sshd, gw), 'echo one']);
  t.equal(first.stdout.toString(), 'one\n');
  await sshd.stop();
  const moved = await startSshd({ dir: sshd.dir });
  t.teardown(() => moved.close());
  t.not(moved.port, sshd.port);
  source.set(masterRoute('master1', { ssh: [{ host: '127.0.0.1', port: moved.port }] }));
  const second = await runSsh([...viaProxy(sshd, gw), 'echo two']);
  t.equal(second.stdout.toString(), 'two\n');
  t.equal(second.code, 0);
});

t.test('20 tunnels at once', async (t) => {
  const { sshd, gw } = await setup(t);
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => runSsh([...viaProxy(sshd, gw), `echo tunnel-${i}`], { timeoutMs: 60_000 })));
  t.same(
    results.map((r) => r.stdout.toString()),
    Array.from({ length: 20 }, (_, i) => `tunnel-${i}\n`),
  );
  t.same(
    results.map((r) => r.code),
    Array.from({ length: 20 }, () => 0),
  );
  t.equal((await gw.metrics.sshTunnelsOpened.get()).values[0]?.value, 20);
});
