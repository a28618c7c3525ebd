'use strict';

// LibreChat-shaped folders for `init` and `doctor`, made from the shipped wiring patches: each
// hunk's old side is LibreChat's code around an anchor (v0.7.9, and main at 0ab3414c for the v0.8
// family), its new side what init makes of it. No other LibreChat code is needed to wire a file.

const fs = require('fs');
const path = require('path');

const PATCHES = path.join(__dirname, '..', '..', 'librechat');
const BETWEEN = '// (LibreChat code between the anchors)';

/** Per file of a patch: its old side (LibreChat's lines) and new side, hunk after hunk. */
function sidesOf(patchName) {
  const files = {};
  let cur = null;
  for (const line of fs.readFileSync(path.join(PATCHES, patchName), 'utf8').split('\n')) {
    const file = /^\+\+\+ b\/(.+)$/.exec(line);
    if (file) {
      files[file[1]] = cur = { old: [], new: [] };
    } else if (cur && /^@@ /.test(line)) {
      cur.old.push(BETWEEN);
      cur.new.push(BETWEEN);
    } else if (cur && /^[ +-]/.test(line) && !/^(---|\+\+\+) /.test(line)) {
      if (line[0] !== '+') cur.old.push(line.slice(1));
      if (line[0] !== '-') cur.new.push(line.slice(1));
    }
  }
  return Object.fromEntries(Object.entries(files).map(([f, s]) => [f, { old: `${s.old.join('\n')}\n`, new: `${s.new.join('\n')}\n` }]));
}

/** The LibreChat versions the tests use, and the patch whose sides stand for their files. */
const FAMILIES = {
  'v0.7.9': { patch: 'wiring-v0.7.9.patch', version: 'v0.7.9' },
  'v0.8.7': { patch: 'wiring-v0.8.patch', version: 'v0.8.7' },
  main: { patch: 'wiring-v0.8.patch', version: 'v0.8.8-rc1' },
};

const side = (family, which) => Object.fromEntries(Object.entries(sidesOf(FAMILIES[family].patch)).map(([f, s]) => [f, s[which]]));
const stockOf = (family) => side(family, 'old');
const wiredOf = (family) => side(family, 'new');

/** A LibreChat-shaped folder below `parent`: package.json with `version`, and `files` (path -> text). */
function makeTree(parent, version, files) {
  const dir = fs.mkdtempSync(path.join(parent, 'lc-'));
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'LibreChat', version }, null, 2)}\n`);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

module.exports = { BETWEEN, FAMILIES, stockOf, wiredOf, makeTree };
