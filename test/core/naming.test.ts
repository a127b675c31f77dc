import t from 'tap';
import { appIdToMasterName, isRouteName, matchHost, matchPath, normalizeHost, sshTargetName } from '../../src/registry/naming.js';

const domains = ['pse.example.com', 'localhost'];

t.test('normalizeHost lower-cases and drops port and trailing dot', async (t) => {
  t.equal(normalizeHost('Master1.PSE.example.com.:8443'), 'master1.pse.example.com');
  t.equal(normalizeHost('[::1]:8080'), '[::1]');
  t.equal(normalizeHost(undefined), '');
  t.equal(normalizeHost(' a.b '), 'a.b');
});

t.test('matchHost: domain routing, path routing, nothing', async (t) => {
  t.same(matchHost('master1.pse.example.com', domains), { type: 'name', name: 'master1', domain: 'pse.example.com' });
  t.same(matchHost('pse.example.com', domains), { type: 'domain', domain: 'pse.example.com' });
  t.same(matchHost('master1.localhost', domains), { type: 'name', name: 'master1', domain: 'localhost' });
  t.same(matchHost('a.b.pse.example.com', domains), { type: 'none' }, 'a route name is one label');
  t.same(matchHost('xpse.example.com', domains), { type: 'none' }, 'suffix must be a whole label');
  t.same(matchHost('evil.com', domains), { type: 'none' });
  t.same(matchHost('-bad.pse.example.com', domains), { type: 'none' });
});

t.test('matchPath splits the first segment', async (t) => {
  t.same(matchPath('/master1/job/x'), { name: 'master1', rest: '/job/x' });
  t.same(matchPath('/master1'), { name: 'master1', rest: '' });
  t.same(matchPath('/master1?a=b'), { name: 'master1', rest: '?a=b' });
  t.same(matchPath('/Master1/'), { name: 'master1', rest: '/' });
  t.equal(matchPath('/'), null);
  t.equal(matchPath('/..%2f/'), null);
  t.equal(matchPath('http://evil/'), null);
});

t.test('sshTargetName accepts the three forms and refuses everything else', async (t) => {
  t.equal(sshTargetName('master1', 'ci.example.com', domains), 'master1');
  t.equal(sshTargetName('master1.ci.example.com', 'ci.example.com', domains), 'master1');
  t.equal(sshTargetName('MASTER1.pse.example.com', 'ci.example.com', domains), 'master1');
  t.equal(sshTargetName('10.0.0.1', 'ci.example.com', domains), null);
  t.equal(sshTargetName('8080', 'ci.example.com', domains), null);
  t.equal(sshTargetName('[::1]', 'ci.example.com', domains), null);
  t.equal(sshTargetName('evil.com', 'ci.example.com', domains), null);
  t.equal(sshTargetName('a.b.ci.example.com', 'ci.example.com', domains), null);
});

t.test('appIdToMasterName', async (t) => {
  t.equal(appIdToMasterName('/masters/master-0286', '/masters'), 'master-0286');
  t.equal(appIdToMasterName('/masters/team-a/master1', '/masters'), 'master1');
  t.equal(appIdToMasterName('/mastersx/m', '/masters'), null);
  t.equal(appIdToMasterName('/cjoc', '/masters'), null);
  t.equal(appIdToMasterName('/masters/Bad_Name', '/masters'), null);
});

t.test('isRouteName is an RFC 1123 label', async (t) => {
  t.ok(isRouteName('a'));
  t.ok(isRouteName('master-1'));
  t.notOk(isRouteName('a'.repeat(64)));
  t.notOk(isRouteName('a-'));
  t.notOk(isRouteName(''));
});
