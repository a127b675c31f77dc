import t from 'tap';
import { catalogue, CiEdgeError, fail, isCiEdgeError } from '../../src/errors.js';

t.test('codes are unique and every template is used with its code', async (t) => {
  const codes = Object.keys(catalogue);
  t.equal(new Set(codes).size, codes.length);
  for (const code of codes) t.match(code, /^E_[A-Z_]+$/);
  const messages = Object.values(catalogue);
  t.equal(new Set(messages).size, messages.length, 'no two codes say the same thing');
});

t.test('messages are formatted and keep the cause', async (t) => {
  const cause = new Error('inner');
  const e = new CiEdgeError('E_NO_HEALTHY_ENDPOINT', ['master1', 'starting'], { cause });
  t.equal(e.message, 'master1 is starting');
  t.equal(e.code, 'E_NO_HEALTHY_ENDPOINT');
  t.equal(e.cause, cause);
  t.equal(fail('E_NO_ROUTE', 'foo').message, 'no master named "foo"');
  t.ok(isCiEdgeError(e, 'E_NO_HEALTHY_ENDPOINT'));
  t.notOk(isCiEdgeError(e, 'E_NO_ROUTE'));
  t.notOk(isCiEdgeError(new Error('x')));
});
