#!/usr/bin/env node
// `npm run bench[:name]`: compiles once, then runs each benchmark in its own process so one cannot warm
// or load the heap of the next. Each prints its measurements and ratios against a reference measured in
// the same run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const all = ['registry', 'http', 'ssh', 'jnlp'];
const wanted = process.argv[2] ?? 'all';
const names = wanted === 'all' ? all : [wanted];
for (const n of names) {
  if (!all.includes(n)) {
    process.stderr.write(`unknown benchmark "${n}" (known: ${all.join(', ')})\n`);
    process.exit(2);
  }
}
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
let failed = 0;
for (const n of names) {
  const file = `dist/bench/${n}.js`;
  if (!existsSync(file)) {
    process.stderr.write(`bench ${n}: ${file} missing\n`);
    failed++;
    continue;
  }
  process.stdout.write(`\n=== bench:${n} ===\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', file, ...process.argv.slice(3)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
