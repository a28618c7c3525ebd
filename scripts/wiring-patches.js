#!/usr/bin/env node
'use strict';

/**
 * Writes librechat/wiring-*.patch: what `init` (lib/wiring.js) does to LibreChat's files, as a
 * patch for those who prefer one. Needs a git repository of LibreChat with its tags (for example
 * the fetched spotifynetflixyu/LibreChat, whose `main` is upstream's main up to 0ab3414c):
 *
 *   node scripts/wiring-patches.js <LibreChat git dir> [--check] [more refs to wire, e.g. a fork's branch]
 *
 * With --check it writes nothing and exits 1 when a shipped patch differs from what init makes.
 * It also wires every release tag from v0.7.9 on (in a scratch folder): each must wire, wire
 * again with no change, and revert byte for byte; one line per tag.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const wiring = require('../lib/wiring');

const PATCHES = [
  { name: 'wiring-v0.7.9.patch', ref: 'v0.7.9', for: 'LibreChat v0.7.9 (Express 4)' },
  { name: 'wiring-v0.8.patch', ref: 'main', for: 'LibreChat v0.8.x (Express 5)' },
];
const OUT = path.join(__dirname, '..', 'librechat');

const git = (dir, ...args) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });

/** LibreChat's files that the wiring reads, at `ref`, in a scratch folder. */
function checkout(repo, ref) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-wiring-'));
  const files = ['package.json', ...wiring.FILES.map((f) => f.file)];
  for (const file of files) {
    let text;
    try {
      text = git(repo, 'show', `${ref}:${file}`);
    } catch {
      continue; // not in this version (the admin panel before v0.8.3)
    }
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

function tree(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p);
    }
  };
  walk(dir);
  return out;
}

function main() {
  const [repo, ...rest] = process.argv.slice(2);
  if (!repo) {
    console.error('usage: node scripts/wiring-patches.js <LibreChat git dir> [--check] [refs…]');
    return 2;
  }
  const check = rest.includes('--check');
  const more = rest.filter((a) => a !== '--check');
  let failed = 0;
  for (const p of PATCHES) {
    const dir = checkout(repo, p.ref);
    const commit = git(repo, 'rev-parse', '--short=8', p.ref).trim();
    const r = wiring.change(dir, 'wired', { dryRun: true });
    if (r.problems.length > 0) throw new Error(`${p.ref}: ${JSON.stringify(r.problems)}`);
    const text = `Wiring of librechat-custom-backend-auth into ${p.for}: what \`init\` does there.\n`
      + `Made from LibreChat ${p.ref} (commit ${commit}) by scripts/wiring-patches.js. Apply in LibreChat's root folder:\n`
      + `  patch -p1 < ${p.name}        (or: git apply ${p.name})\n`
      + 'docs/install.md ("Wiring") says what each part does.\n\n'
      + r.changes.map((c) => wiring.unifiedDiff(c.file, c.before, c.after, c.anchors)).join('');
    const file = path.join(OUT, p.name);
    const same = fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text;
    if (check) {
      console.log(`${same ? 'same     ' : 'DIFFERENT'} ${p.name}`);
      if (!same) failed += 1;
    } else {
      fs.writeFileSync(file, text);
      console.log(`${same ? 'unchanged' : 'written  '} ${p.name}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const tags = git(repo, 'tag', '--list', 'v0.*').split('\n').filter((t) => /^v0\.(7\.9|8\.\d+)$/.test(t));
  for (const ref of [...tags.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })), 'v0.8.8-rc1', 'main', ...more]) {
    const dir = checkout(repo, ref);
    const before = tree(dir);
    const wired = wiring.change(dir, 'wired');
    const again = wiring.change(dir, 'wired');
    const reverted = wiring.change(dir, 'stock');
    const after = tree(dir);
    const sameTree = Object.keys(before).length === Object.keys(after).length
      && Object.entries(before).every(([k, v]) => after[k] && v.equals(after[k]));
    const ok = wired.problems.length === 0 && wired.changes.length > 0 && again.changes.length === 0
      && reverted.changes.length === wired.changes.length && sameTree;
    if (!ok) failed += 1;
    const places = wired.changes.reduce((n, c) => n + c.count, 0);
    console.log(`${ok ? 'PASS' : 'FAIL'} ${ref.padEnd(11)} ${wired.changes.length} files, ${places} places wired; again: ${again.changes.length} changes; reverted byte for byte: ${sameTree}${wired.problems.length ? `; problems: ${wired.problems.map((x) => `${x.file}: ${x.what}`).join('; ')}` : ''}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = main();
