#!/usr/bin/env node
'use strict';

// The source id of the addon: a SHA-256 over every file the Rust build reads from this checkout
// (src/, build.rs, Cargo.toml, Cargo.lock), path and content. The build embeds it in the binary
// (build.rs reads LCBA_SOURCE_ID; `sourceId()` answers it) and the release spec checks that every
// shipped binary carries the id of the checkout it ships from: a build cache that served a stale
// binary fails there. It also keys the cache of finished binaries (scripts/cache.sh).
//
//   node scripts/source-id.js                 prints the id (64 hex digits)
//   node scripts/source-id.js --check FILE... fails unless each binary carries this checkout's id

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const REPO = path.resolve(__dirname, '..');
const INPUTS = ['src', 'build.rs', 'Cargo.toml', 'Cargo.lock'];

function files(rel) {
  const abs = path.join(REPO, rel);
  if (!fs.statSync(abs).isDirectory()) return [rel];
  return fs.readdirSync(abs).flatMap((name) => files(path.posix.join(rel, name)));
}

/** The id of the sources under `repo` (default: this checkout). */
function sourceId() {
  const all = INPUTS.flatMap(files).sort();
  const outer = crypto.createHash('sha256');
  for (const rel of all) {
    const inner = crypto.createHash('sha256').update(fs.readFileSync(path.join(REPO, rel))).digest('hex');
    outer.update(`${inner}  ${rel}\n`);
  }
  return outer.digest('hex');
}

/** The id a binary carries (its `lcba-source-id:` marker), or null. */
function embeddedSourceId(file) {
  const text = fs.readFileSync(file).toString('latin1');
  const m = /lcba-source-id:([0-9a-f]{64}|unknown)/.exec(text);
  return m ? m[1] : null;
}

module.exports = { sourceId, embeddedSourceId, INPUTS };

if (require.main === module) {
  const [flag, ...binaries] = process.argv.slice(2);
  const id = sourceId();
  if (flag !== '--check') {
    process.stdout.write(`${id}\n`);
  } else {
    for (const file of binaries) {
      const got = embeddedSourceId(file);
      if (got !== id) {
        process.stderr.write(`${file}: built from sources ${got ?? '(no id)'}, this checkout is ${id}\n`);
        process.exitCode = 1;
      }
    }
  }
}
