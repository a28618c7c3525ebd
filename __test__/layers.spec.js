'use strict';

// Issue 24 item 3: the layers of src/ and the shim's files have no circle, and each file of a layer
// uses only the layers its folder's module file allows (`//! May use:`). The check is
// scripts/check-cycles.js (`node scripts/check-cycles.js --graph` prints the edges); here it runs
// over the checkout, and over copies with one upward use added, which it must name.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { problems, rustGraph, expand, production } = require('../scripts/check-cycles');

const ROOT = path.join(__dirname, '..');

/** A copy of src/, lib/ and index.js to change. */
function copy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-layers-'));
  for (const part of ['src', 'lib', 'index.js']) fs.cpSync(path.join(ROOT, part), path.join(dir, part), { recursive: true });
  return dir;
}

describe('layers and circles (scripts/check-cycles.js)', () => {
  let dir;
  afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  test('the checkout: no circle among src/ modules or the shim files, no layer breach', () => {
    expect(problems()).toEqual([]);
  });

  test('every layer folder declares what it may use, and the graph sees the layers', () => {
    const graph = rustGraph();
    const layers = fs.readdirSync(path.join(ROOT, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(layers.sort()).toEqual(['backend', 'config', 'doctor', 'flows', 'identity', 'shared', 'store', 'tokens']);
    for (const layer of layers) {
      expect([layer, /^\/\/! May use: .+$/m.test(fs.readFileSync(path.join(ROOT, 'src', layer, 'mod.rs'), 'utf8'))]).toEqual([layer, true]);
    }
    // Edges are found through use trees, inline paths and super:: alike.
    expect([...graph.get('flows::login')]).toEqual(expect.arrayContaining(['flows::service', 'backend::client', 'store::users']));
    expect([...graph.get('doctor::own_indexes')]).toEqual(expect.arrayContaining(['doctor::finding', 'doctor::mongo', 'store::users']));
  });

  test('an upward use is named twice: as a circle and as a layer breach', () => {
    dir = copy();
    const file = path.join(dir, 'src', 'shared', 'cache.rs');
    fs.writeFileSync(file, `use crate::flows::service::Service;\n${fs.readFileSync(file, 'utf8')}`);
    const found = problems(dir);
    expect(found.some((p) => p.startsWith('src/ circle:') && p.includes('shared::cache'))).toBe(true);
    expect(found).toContain('shared::cache uses flows::service, but layer shared may use only: nothing');
  });

  test('a use the layer does not declare is a breach even without a circle', () => {
    dir = copy();
    const file = path.join(dir, 'src', 'tokens', 'librechat.rs');
    fs.writeFileSync(file, `${fs.readFileSync(file, 'utf8')}\nfn _upward() -> Option<crate::identity::BackendUser> { None }\n`);
    expect(problems(dir)).toEqual(['tokens::librechat uses identity, but layer tokens may use only: shared']);
  });

  test('a circle between two shim files is named', () => {
    dir = copy();
    fs.appendFileSync(path.join(dir, 'lib', 'errors.js'), "\nrequire('./service');\n");
    expect(problems(dir)).toEqual([expect.stringMatching(/^shim circle: .*lib\/errors\.js.*lib\/service\.js/)]);
  });

  test('unit-test modules, comments and strings are not edges; use trees expand', () => {
    const text = production(
      'use crate::a::b;\n// use crate::c::d;\nconst S: &str = "crate::e::f";\n#[cfg(test)]\nmod tests {\n    use crate::g::h;\n    fn x() { let _ = {}; }\n}\nfn y() {}\n',
    );
    expect(text).toContain('crate::a::b');
    expect(text).not.toMatch(/crate::[cegh]/);
    expect(text).toContain('fn y()');
    expect(expand('crate::{a::{B, c}, d::E as F, base::Alias}')).toEqual(['crate::a::B', 'crate::a::c', 'crate::d::E', 'crate::base::Alias']);
  });
});
