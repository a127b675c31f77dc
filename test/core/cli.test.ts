import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, usage } from '../../src/cli.js';

async function run(args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

t.test('--help prints usage and exits 0', async (t) => {
  t.same(await run(['--help']), { code: 0, out: usage, err: '' });
});

t.test('no --config is a usage error (2)', async (t) => {
  const r = await run([]);
  t.equal(r.code, 2);
  t.match(r.err, /^ci-edge: --config FILE is required\n/);
});

t.test('an unknown flag is a usage error (2)', async (t) => {
  const r = await run(['--bogus']);
  t.equal(r.code, 2);
  t.match(r.err, /Unknown option '--bogus'/);
});

t.test('a bad file stops with one line naming the key, no stack trace (1)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ci-edge-cli-'));
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'domains: [a.com]\nhttp: { listen: "0.0.0.0:99999" }\n');
  const r = await run(['--config', file]);
  t.same(r, { code: 1, out: '', err: 'ci-edge: invalid configuration: http.listen: port must be 0..65535, got 99999\n' });
  writeFileSync(file, 'domains: [a.com\n');
  const y = await run(['-c', file]);
  t.equal(y.code, 1);
  t.match(y.err, new RegExp(`^ci-edge: invalid configuration: ${file} is not valid YAML: `));
  t.notMatch(y.err, /\n\s+at /, 'no stack trace');
});

t.test('--check validates the embedded default', async (t) => {
  t.same(await run(['--check', '-c', 'config/default.yaml']), { code: 0, out: 'config/default.yaml: OK\n', err: '' });
});
