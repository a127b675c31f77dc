/* global fetch, AbortSignal */
// The image's HEALTHCHECK: GET /health on the admin listener. Node, because slim images have no curl.
// The address is the one ci-edge itself reads (CI_EDGE_ADMIN_LISTEN); a wildcard host is asked on loopback.
const listen = process.env.CI_EDGE_ADMIN_LISTEN || '127.0.0.1:9090';
const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen.trim());
const given = m ? (m[1] ?? m[2]) : '';
const host = !given || given === '0.0.0.0' ? '127.0.0.1' : given === '::' ? '[::1]' : given.includes(':') ? `[${given}]` : given;
const port = m ? m[3] : '9090';
try {
  const res = await fetch(`http://${host}:${port}/health`, { signal: AbortSignal.timeout(3000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
