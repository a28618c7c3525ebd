'use strict';

// The demo command of README "Try it, test it" runs the main job: `npm run demo` (build, then
// demo/run.js). This runs demo/run.js against the suite's test database and expects every step to pass.

const path = require('path');
const { execFile } = require('child_process');
const { mongoUri } = require('./support/mongoUri');

test('the demo (README "Try it, test it") walks every step and answers as expected', async () => {
  const { code, stdout } = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'demo', 'run.js')], {
      env: { ...process.env, MONGO_URI: mongoUri('') },
      timeout: 120_000,
      maxBuffer: 1 << 24,
    }, (err, out) => resolve({ code: err ? err.code ?? 1 : 0, stdout: out }));
  });
  expect(stdout).toContain('Done: every step answered as expected.');
  expect(code).toBe(0);
}, 150_000);
