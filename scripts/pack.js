#!/usr/bin/env node
'use strict';

// Packs the release artefacts into dist/ (`npm run pack:release`):
//   librechat-custom-backend-auth-<v>.tgz                 the main package: JS shim, loader, CLI; no
//                                                         binary, the platform packages as
//                                                         optionalDependencies (exact version)
//   librechat-custom-backend-auth-<platform>-<v>.tgz      one per platform in npm/<platform>/, the
//                                                         binary only (os/cpu/libc set, so npm
//                                                         installs just the one that fits)
//   SHA256SUMS
//   Dockerfile, install.sh, docker-compose.override.yml (docker/) and the wiring patches (librechat/):
//   with the tarballs, dist/ is the folder an operator copies to LibreChat/custom-backend-auth/ and
//   builds LibreChat's image from (docs/install.md, "Docker: LibreChat's official image")
// The binaries must have been built (`npm run build:targets`). Each is checked again
// (scripts/check-binary.js) before it is packed.
//
//   node scripts/pack.js [platform ...]     # default: every platform in package.json napi.targets

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { problems, shippedPlatforms } = require('./check-binary');

const REPO = path.resolve(__dirname, '..');
const DIST = path.join(REPO, 'dist');
const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));

const ASSETS = [
  'docker/Dockerfile',
  'docker/install.sh',
  'docker/docker-compose.override.yml',
  'librechat/wiring-v0.8.patch',
  'librechat/wiring-v0.7.9.patch',
];

/** `npm pack` of `dir` into dist/; returns the tarball's file name. */
function npmPack(dir) {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', DIST], { cwd: dir, encoding: 'utf8' });
  return JSON.parse(out)[0].filename;
}

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function packPlatform(platform) {
  const dir = path.join(REPO, 'npm', platform);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (manifest.version !== pkg.version) {
    throw new Error(`npm/${platform}/package.json has version ${manifest.version}, the package ${pkg.version} (run: npx napi create-npm-dirs)`);
  }
  const binary = path.join(dir, manifest.main);
  if (!fs.existsSync(binary)) throw new Error(`${platform}: ${path.relative(REPO, binary)} is missing (run: npm run build:targets -- ${platform})`);
  const found = problems(platform, binary);
  if (found.length) throw new Error(`${platform}: ${found.join('; ')}`);
  return npmPack(dir);
}

/**
 * The main package, staged in a temporary folder: what `npm pack` of the repository would hold, less
 * any locally built binary, with the platform packages as optionalDependencies.
 */
function packMain(shipped) {
  const listed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: REPO, encoding: 'utf8' }))[0].files;
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'lcba-pack-'));
  try {
    for (const { path: rel } of listed) {
      if (rel.endsWith('.node')) continue;
      fs.mkdirSync(path.dirname(path.join(stage, rel)), { recursive: true });
      fs.copyFileSync(path.join(REPO, rel), path.join(stage, rel));
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'));
    manifest.files = manifest.files.filter((f) => !f.endsWith('.node'));
    manifest.optionalDependencies = Object.fromEntries(shipped.map((p) => [`${pkg.name}-${p}`, pkg.version]));
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return npmPack(stage);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

function main() {
  const wanted = process.argv.slice(2);
  const all = shippedPlatforms(pkg.napi.targets);
  const unknown = wanted.filter((p) => !all.includes(p));
  if (unknown.length) throw new Error(`unknown platform(s) ${unknown.join(', ')}; shipped: ${all.join(', ')}`);
  const shipped = wanted.length ? wanted : all;
  fs.rmSync(DIST, { recursive: true, force: true });
  fs.mkdirSync(DIST, { recursive: true });
  const files = [...shipped.map(packPlatform), packMain(all)];
  const sums = files.map((f) => `${sha256(path.join(DIST, f))}  ${f}`).join('\n');
  fs.writeFileSync(path.join(DIST, 'SHA256SUMS'), `${sums}\n`);
  for (const f of ASSETS) fs.copyFileSync(path.join(REPO, f), path.join(DIST, path.basename(f)));
  for (const f of files) console.log(`dist/${f}  ${fs.statSync(path.join(DIST, f)).size} bytes`);
}

try {
  main();
} catch (err) {
  console.error(`[pack] FAILED: ${err.message}`);
  process.exit(1);
}
