import t from 'tap';
import { loadConfig } from '../../src/config/loader.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { buildSources } from '../../src/registry/sources.js';

t.test('config/marathon.example.yaml parses and builds file, services and Marathon sources in that order', async (t) => {
  const config = await loadConfig('config/marathon.example.yaml', {});
  const sources = buildSources(config, silentLogger(), createMetrics());
  t.same(
    sources.map((s) => s.id),
    ['file', 'services', 'marathon'],
  );
  await Promise.all(sources.map((s) => s.close()));
});

t.test('without marathon or upstream services, only the file registry', async (t) => {
  const config = await loadConfig('config/default.yaml', {});
  t.same(
    buildSources(config, silentLogger(), createMetrics()).map((s) => s.id),
    ['file'],
  );
});
