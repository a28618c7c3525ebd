'use strict';

// `init` and `init --revert` (bin/cli.js): wires LibreChat's files (lib/wiring.js) and writes the
// package's block in LibreChat's .env (lib/envBlock.js), or takes both back. Everything is planned
// first; a file is written only when the whole plan holds. No secret is printed.

const fs = require('fs');
const path = require('path');
const wiring = require('./wiring');
const { asker } = require('./terminal');
const envBlock = require('./envBlock');

/** The backend URLs init writes: setting, flag, path below --backend, what the prompt asks. */
const URLS = [
  { name: 'BACKEND_AUTH_URL', flag: '--auth-url', path: '/api/auth/login', ask: 'Backend login URL (POST user name and password)' },
  { name: 'BACKEND_USER_INFO_URL', flag: '--userinfo-url', path: '/api/auth/userinfo', ask: 'Backend user-info URL (GET with the access token)' },
  { name: 'BACKEND_REFRESH_URL', flag: '--refresh-url', path: '/api/auth/refresh', ask: 'Backend refresh URL (POST the refresh token)' },
];

/** The LibreChat folder: `dir`, else this folder, else (run in LibreChat's api/) its parent. */
function librechatRoot(dir) {
  if (dir !== undefined) return path.resolve(dir);
  for (const candidate of ['.', '..']) {
    if (fs.existsSync(path.resolve(candidate, 'api', 'server', 'index.js'))) return path.resolve(candidate);
  }
  return path.resolve('.');
}

function isUrl(v) {
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}

/**
 * The values of the .env block: each URL from its flag, else what .env or the environment already
 * has, else below `--backend`, else asked (with the login URL's neighbours as defaults).
 * Returns { wanted, replace, missing, invalid }.
 */
async function blockValues(opts, parsed, env, prompt) {
  const wanted = { USE_CUSTOM_BACKEND_AUTH: 'true' };
  const replace = new Set(['USE_CUSTOM_BACKEND_AUTH']);
  const missing = [];
  const invalid = [];
  const origin = opts.backend ? opts.backend.replace(/\/+$/, '') : null;
  let login = null;
  for (const u of URLS) {
    const existing = parsed.block.get(u.name) ?? parsed.outside.get(u.name)?.value;
    let value = opts.urls[u.name];
    if (value !== undefined) replace.add(u.name);
    else if (existing) value = existing;
    else if (env[u.name]) value = env[u.name];
    else if (origin) value = `${origin}${u.path}`;
    else if (prompt) value = await prompt.ask(u.ask, login ? login.replace(/\/[^/]*$/, u.path.slice(u.path.lastIndexOf('/'))) : undefined);
    if (!value) missing.push(`${u.name} (${u.flag}, or --backend <origin>)`);
    else if (!isUrl(value)) invalid.push(`${u.name}: "${value.slice(0, 200)}" is not an http(s) URL`);
    else wanted[u.name] = value;
    if (u.name === 'BACKEND_AUTH_URL') login = value;
  }
  if (opts.urls.BACKEND_LOGOUT_URL !== undefined) {
    if (isUrl(opts.urls.BACKEND_LOGOUT_URL)) {
      wanted.BACKEND_LOGOUT_URL = opts.urls.BACKEND_LOGOUT_URL;
      replace.add('BACKEND_LOGOUT_URL');
    } else {
      invalid.push('BACKEND_LOGOUT_URL: not an http(s) URL');
    }
  }
  wanted.BACKEND_TOKEN_ENCRYPTION_KEY = null;
  if (opts.events) wanted.BACKEND_EVENTS_SECRET = null;
  if (opts.usernameLogin) wanted.BACKEND_LOGIN_USES_USERNAME = 'true';
  return { wanted, replace, missing, invalid };
}

/** Settings of the block whose values the dry run shows (URLs without any user:password@). */
const SHOWN = new Set(['USE_CUSTOM_BACKEND_AUTH', 'BACKEND_LOGIN_USES_USERNAME', 'ALLOW_EMAIL_LOGIN', ...URLS.map((u) => u.name), 'BACKEND_LOGOUT_URL']);

/**
 * The block as the dry run shows it: the values init writes; a generated key, or anything else an
 * operator put in the block (a client secret, a MONGO_URI), only as its length.
 */
function shownBlock(text) {
  const p = envBlock.parse(text);
  return [...p.block].map(([n, v]) => {
    if (!SHOWN.has(n)) return `  ${n}=<${v.length} characters, ${envBlock.GENERATED.has(n) ? 'generated, ' : ''}not shown>`;
    return `  ${n}=${v.replace(/^(\w+:\/\/)[^/@]*@/, '$1…@')}`;
  });
}

function printProblems(r, opts, out) {
  out.log(`Not ${opts.revert ? 'reverted' : 'wired'}: no file was changed. What was not found exactly once:`);
  for (const p of r.problems) {
    out.log('');
    out.log(`  ${p.file}: ${p.what}: ${p.reason}`);
    if (p.anchor !== undefined) {
      const [looked, made] = opts.revert ? [p.lines, p.anchor] : [p.anchor, p.lines];
      out.log('    It looks for (the whole line, any indent):');
      for (const line of looked.replace(/\n$/, '').split('\n')) out.log(`      ${line}`);
      out.log(`    and ${opts.revert ? 'puts back' : 'makes it'}:`);
      for (const line of made.replace(/\n$/, '').split('\n')) out.log(`      ${line}`);
    }
  }
  out.log('');
  out.log('Make the lines above by hand (docs/install.md, "Wiring"), or bring the anchor back, and run it again.');
}

/** The image LibreChat publishes for a release tag (its .github/workflows/tag-images.yml). */
const imageFor = (versionText) => (versionText && /^v\d+\.\d+\.\d+(-rc\d+)?$/.test(versionText)
  ? `ghcr.io/danny-avila/librechat:${versionText}`
  : 'registry.librechat.ai/danny-avila/librechat-dev:latest');

/**
 * `--docker`: LibreChat's compose override (from the release folder copied as custom-backend-auth/),
 * building the image of the LibreChat version found (`--image` to choose another). An override that
 * is not the package's is never replaced. Returns { problem } or { file, before, after } (null: none).
 */
function dockerPlan(root, versionText, opts) {
  const context = path.join(root, 'custom-backend-auth');
  const template = path.join(context, 'docker-compose.override.yml');
  const file = path.join(root, 'docker-compose.override.yml');
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (!fs.existsSync(template) || !fs.existsSync(path.join(context, 'Dockerfile'))) {
    return { problem: `${context} holds no release folder (Dockerfile, install.sh, docker-compose.override.yml, the tarballs): copy the release's dist/ there first` };
  }
  const text = fs.readFileSync(template, 'utf8');
  const ours = (t) => t !== null && t.split('\n')[0] === text.split('\n')[0];
  if (before !== null && !ours(before)) {
    return { problem: `${file} is not the package's (its first line differs): init does not replace it; add the api service of ${template} to it by hand` };
  }
  if (opts.revert) return { file, before, after: ours(before) ? null : before };
  const image = opts.image ?? imageFor(versionText);
  const after = text.replace(/^( *LIBRECHAT_IMAGE: ).*$/m, `$1${image}`);
  return { file, before, after, image };
}

/**
 * Writes `text` over `file` whole (beside it, then renamed); a new file is readable by its owner only.
 * A link (a `.env` shared between checkouts) stays a link: its target is written.
 */
function writeWhole(link, text) {
  const file = fs.existsSync(link) ? fs.realpathSync(link) : link;
  const mode = fs.existsSync(file) ? fs.statSync(file).mode : 0o600;
  const tmp = `${file}.librechat-custom-backend-auth.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

/**
 * `init` (opts.revert: take it back). `io`: { stdin, stdout } for the prompts. Returns the exit
 * code: 0 done (or nothing to do), 1 not done (what is missing was printed), 2 a usage error.
 */
async function init(opts, out, io = { stdin: process.stdin, stdout: process.stdout }, env = process.env) {
  const root = librechatRoot(opts.dir);
  if (!fs.existsSync(path.join(root, 'api', 'server', 'index.js'))) {
    out.err(`librechat-custom-backend-auth: ${root} is not a LibreChat folder (no api/server/index.js); run init in it or give --dir`);
    return 2;
  }
  const to = opts.revert ? 'stock' : 'wired';
  // With --docker the image's files are wired when it is built (install.sh), not these.
  const plan = opts.docker ? { ...wiring.inspect(root), changes: [], problems: [] } : wiring.change(root, to, { dryRun: true });
  out.log(`LibreChat ${plan.versionText ?? '(version not found in package.json)'} in ${root}`);
  if (plan.problems.length > 0) {
    printProblems(plan, opts, out);
    return 1;
  }
  const docker = opts.docker ? dockerPlan(root, plan.versionText, opts) : null;
  if (docker?.problem) {
    out.log(`Not ${opts.revert ? 'reverted' : 'wired'}: no file was changed. ${docker.problem}`);
    return 1;
  }
  const dockerChanges = docker !== null && docker.after !== docker.before;

  // The .env block, planned before anything is written.
  let envPlan = null;
  if (!opts.noEnv) {
    const file = path.resolve(opts.envFile ?? path.join(root, '.env'));
    const exists = fs.existsSync(file);
    const { text, back } = wiring.lfText(exists ? fs.readFileSync(file, 'utf8') : '');
    if (envBlock.parse(text).damaged) {
      out.log(`Not ${opts.revert ? 'reverted' : 'wired'}: no file was changed. ${file} has the package's start line but not its end line (${envBlock.END}): mend the block by hand.`);
      return 1;
    }
    if (opts.revert) {
      const r = envBlock.remove(text);
      envPlan = { file, before: text, after: r.text, write: back(r.text), changes: [], created: r.created };
    } else {
      const prompt = asker(io);
      let values;
      try {
        values = await blockValues(opts, envBlock.parse(text), env, prompt);
      } finally {
        prompt?.close();
      }
      if (values.missing.length > 0 || values.invalid.length > 0) {
        out.log(`Not wired: no file was changed. ${file} needs:`);
        for (const m of values.missing) out.log(`  ${m}`);
        for (const m of values.invalid) out.log(`  ${m}`);
        if (!io.stdin.isTTY && values.missing.length > 0) out.log('(No terminal to ask on: give them as flags or in the environment.)');
        return 1;
      }
      const r = envBlock.write(text, values.wanted, { replace: values.replace, created: !exists });
      envPlan = { file, before: text, after: r.text, write: back(r.text), changes: r.changes };
    }
  }
  const envChanges = envPlan && envPlan.after !== envPlan.before;

  const changed = plan.changes.length + (envChanges ? 1 : 0) + (dockerChanges ? 1 : 0);
  if (changed === 0) {
    out.log(opts.revert ? 'Not wired: nothing to revert.' : 'Already wired: nothing changed.');
    return 0;
  }
  if (opts.dryRun) {
    for (const c of plan.changes) out.log(wiring.unifiedDiff(c.file, c.before, c.after, c.anchors).replace(/\n$/, ''));
    if (envChanges && !opts.revert) {
      out.log(`${envPlan.file}: the block would hold`);
      for (const l of shownBlock(envPlan.after)) out.log(l);
    } else if (envChanges) {
      out.log(`${envPlan.file}: the block would be removed`);
    }
    if (dockerChanges) out.log(docker.after === null ? `${docker.file} would be removed` : `${docker.file} would build ${docker.image}`);
    out.log(`Dry run: ${changed} file(s) would change; nothing was written.`);
    return 0;
  }

  const done = opts.docker ? plan : wiring.change(root, to);
  for (const c of done.changes) out.log(`  ${opts.revert ? 'reverted' : 'wired'}   ${c.file} (${c.count} place${c.count === 1 ? '' : 's'})`);
  if (envChanges) {
    if (opts.revert && envPlan.created && envPlan.after === '') fs.rmSync(envPlan.file);
    else writeWhole(envPlan.file, envPlan.write);
    out.log(`  ${opts.revert ? 'removed the block from' : 'wrote'} ${envPlan.file}`);
    for (const c of envPlan.changes) {
      if (c.what === 'kept' && c.detail === 'already in the block') continue;
      out.log(`    ${c.name}: ${c.what}${c.secret ? ' (generated from the system\'s random source; not shown: read it in the file)' : ''}${c.detail ? `, ${c.detail}` : ''}`);
    }
  }
  if (dockerChanges) {
    if (docker.after === null) fs.rmSync(docker.file);
    else writeWhole(docker.file, docker.after);
    out.log(docker.after === null ? `  removed ${docker.file}` : `  wrote   ${docker.file} (LibreChat's api service built from ${docker.image}, wired at the build)`);
  }
  if (opts.docker) {
    out.log(opts.revert
      ? 'Reverted. `docker compose up -d` runs LibreChat\'s own image again.'
      : 'Done. Then: docker compose build api && docker compose up -d; doctor runs in the container: docker compose exec api npx librechat-custom-backend-auth doctor');
    return 0;
  }
  out.log(opts.revert
    ? 'Reverted. Restart LibreChat (Docker: rebuild the image) to run its own login again.'
    : 'Wired. Restart LibreChat (Docker: rebuild the image); `npx librechat-custom-backend-auth doctor` checks the configuration first.');
  return 0;
}

module.exports = { init, librechatRoot };
