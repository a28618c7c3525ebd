#!/usr/bin/env node
'use strict';

// The package's command line (USAGE below says what each command does):
// - `doctor` prints the effective configuration (secrets redacted) and its checks; the checks and the
//   redaction happen in the native addon (src/doctor/), the wiring's in lib/wiring.js; this file
//   reads the environment and prints. Exit code: 0 without problems, 1 with any, 2 on a usage error.
// - `init` / `uninstall` wire LibreChat and write its .env block (lib/init.js), then run doctor.

const fs = require('fs');
const path = require('path');
const wiring = require('../lib/wiring');
const { init, librechatRoot } = require('../lib/init');
const { isEnabled } = require('../lib/switches');
const { readSecret } = require('../lib/terminal');

const NAME = 'librechat-custom-backend-auth';
/** A file that names the package or one of its exports uses it (wired by hand, or by an older wiring). */
const USES_PACKAGE = /librechat-custom-backend-auth|\bcustom(?:Jwt|Backend)\w*|\brequireCustomBackendAuth\b|\bisCustomBackendAuthEnabled\b/;

const USAGE = `Usage: ${NAME} <command> [options]

Commands:
  doctor                 Show the effective configuration (secrets redacted) and check it:
                         each backend URL answers (no credentials are sent), the database is
                         reachable and has the indexes of LibreChat's models on users,
                         sessions and balances and the package's own. Without NODE_ENV it
                         checks as production (what \`npm run backend\` sets). With the switch
                         on, that LibreChat's files (--dir, else the env file's folder, else
                         this folder or its parent) are wired as init wires them.
                         Exits 0 when there is no problem, 1 otherwise.

  init                   Wire the package into the LibreChat folder (--dir, else this folder or,
                         in LibreChat's api/ folder, its parent): finds each place in LibreChat's
                         files by its code, not by line numbers, for LibreChat v0.7.9 to main,
                         and writes the package's block into LibreChat's .env (the switch, the
                         backend URLs, a generated encryption key). Changes no file unless every
                         place is found exactly once and every value is known; otherwise says
                         what is missing (for a place: the file, the line it looked for and the
                         lines to add by hand). A second run changes nothing and says so.
                         Exit 0 done, 1 not done, 2 usage error.
  uninstall              The same as init --revert.

Options:
  --dir <path>           The LibreChat folder (init, uninstall, doctor's wiring check).
  --dry-run              init: print what it would change (the diff, the .env block with
                         generated keys masked) and write nothing.
  --revert               init: give every wired file and the .env back as they were, byte for byte.
  --backend <origin>     init: the backend's URLs below it (/api/auth/login, /api/auth/userinfo,
                         /api/auth/refresh), for those not given one by one:
  --auth-url <url>       init: BACKEND_AUTH_URL           Without a flag, a value .env or the
  --userinfo-url <url>   init: BACKEND_USER_INFO_URL      environment already has is kept; at a
  --refresh-url <url>    init: BACKEND_REFRESH_URL        terminal, a missing one is asked for.
  --logout-url <url>     init: BACKEND_LOGOUT_URL (optional).
  --events               init: also generate BACKEND_EVENTS_SECRET (backend events).
  --username-login       init: BACKEND_LOGIN_USES_USERNAME=true (the login page asks for a user name).
  --no-env               init: wire the files only; leave .env alone.
  --docker               init: for LibreChat's Docker setup: with the release folder copied to
                         custom-backend-auth/, writes docker-compose.override.yml building the
                         image of the LibreChat version found (ghcr.io/danny-avila/librechat:<tag>;
                         --image <ref> for another), and the .env block; the image's own files
                         are wired when it is built. No doctor (it runs in the container).
  --no-doctor            init: do not run doctor at the end (it does by default, on what init wrote).
  --check-login <user>   doctor (and init's doctor): a canary login of <user> at the backend with
                         the configuration checked; the password is asked with no echo, or read
                         from stdin (never from the command line). No user is written and no
                         session kept; the backend's is ended where BACKEND_LOGOUT_URL is set.
  --env-file <path>      doctor: read variables from this file (default: .env in the current
  --env <path>           folder, else in its parent: LibreChat's root when run in its api/
                         folder). init: the .env to write (default: LibreChat's root .env).
                         Variables already in the environment take precedence.
                         (Node 20 itself also reads an --env-file argument and stops with
                         exit code 9 if the file is missing; --env avoids that.)
  -h, --help             Show this help.
`;

/** A minimal .env reader for when `dotenv` is not installed: KEY=value, quotes, # comments. */
function parseEnv(text) {
  const out = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2];
    const quote = value[0];
    if ((quote === '"' || quote === "'" || quote === '`') && value.lastIndexOf(quote) > 0) {
      value = value.slice(1, value.lastIndexOf(quote));
      if (quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
    } else {
      value = value.replace(/\s+#.*$/, '').trim();
    }
    out[m[1]] = value;
  }
  return out;
}

function parseEnvFile(file) {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return require('dotenv').parse(text);
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') return parseEnv(text);
    throw err;
  }
}

function parseArgs(argv) {
  const opts = {
    command: undefined, envFile: undefined, dir: undefined, backend: undefined, checkLogin: undefined, image: undefined, urls: {},
    dryRun: false, revert: false, noEnv: false, noDoctor: false, docker: false, events: false, usernameLogin: false, help: false, error: undefined,
  };
  const PATHS = { '--env-file': 'envFile', '--env': 'envFile', '--dir': 'dir', '--backend': 'backend', '--check-login': 'checkLogin', '--image': 'image' };
  const URL_FLAGS = {
    '--auth-url': 'BACKEND_AUTH_URL',
    '--userinfo-url': 'BACKEND_USER_INFO_URL',
    '--refresh-url': 'BACKEND_REFRESH_URL',
    '--logout-url': 'BACKEND_LOGOUT_URL',
  };
  const SWITCHES = {
    '--dry-run': 'dryRun', '--revert': 'revert', '--no-env': 'noEnv', '--docker': 'docker', '--no-doctor': 'noDoctor', '--events': 'events', '--username-login': 'usernameLogin',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (arg === '-h' || arg === '--help') {
      opts.help = true;
    } else if (SWITCHES[arg]) {
      opts[SWITCHES[arg]] = true;
    } else if (PATHS[flag] || URL_FLAGS[flag]) {
      if (inline === undefined && i + 1 >= argv.length) return { ...opts, error: `${flag} needs a value` };
      const value = inline ?? argv[(i += 1)];
      if (PATHS[flag]) opts[PATHS[flag]] = value;
      else opts.urls[URL_FLAGS[flag]] = value;
    } else if (arg.startsWith('-')) {
      return { ...opts, error: `unknown option ${arg}` };
    } else if (opts.command === undefined) {
      opts.command = arg;
    } else {
      return { ...opts, error: `unexpected argument ${arg}` };
    }
  }
  return opts;
}

/** process.env, with the env file filling in what it lacks. Only strings. */
function loadVars(envFile) {
  let file = null;
  let fileVars = {};
  if (envFile !== undefined) {
    file = path.resolve(envFile);
    fileVars = parseEnvFile(file); // a missing explicit file is an error (thrown)
  } else {
    // LibreChat reads the .env of the folder it starts in (dotenv's default), its root folder
    // (`npm run backend`, the Docker image's /app); docs/operations.md runs doctor in `api/`, below it.
    for (const dir of ['.', '..']) {
      const candidate = path.resolve(dir, '.env');
      if (fs.existsSync(candidate)) {
        file = candidate;
        fileVars = parseEnvFile(candidate);
        break;
      }
    }
  }
  const vars = {};
  for (const [k, v] of Object.entries({ ...fileVars, ...process.env })) {
    if (v !== undefined && v !== null) vars[k] = String(v);
  }
  return { vars, file };
}

const LABELS = { ok: 'OK', info: 'INFO', problem: 'PROBLEM' };

/**
 * The wiring's findings while the switch is on: LibreChat's files must be wired (all of them, in the
 * form `init` makes for that version), or LibreChat silently runs its own login.
 */
function wiringFindings(vars, dir) {
  if (!isEnabled(vars.USE_CUSTOM_BACKEND_AUTH)) return { findings: [], wired: false };
  const root = librechatRoot(dir);
  if (!fs.existsSync(path.join(root, 'api', 'server', 'index.js'))) {
    return {
      findings: [{ level: 'info', check: 'wiring', detail: `no LibreChat folder at ${root} (no api/server/index.js): run doctor in LibreChat's folder or its api/, or give --dir, to check the wiring` }],
      wired: false,
    };
  }
  const s = wiring.wiringState(root);
  const version = `LibreChat ${s.versionText ?? '(version unknown)'}`;
  if (s.state === 'wired') return { findings: [{ level: 'ok', check: 'wiring', detail: `${version} in ${root} is wired` }], wired: true };
  if (s.state === 'earlier') {
    return {
      findings: [{ level: 'problem', check: 'wiring', detail: `${version} in ${root} is wired by an earlier version of the package: run \`npx librechat-custom-backend-auth init\` there to bring it up to date (the backend's second factor needs it)` }],
      wired: true,
    };
  }
  const fix = 'run `npx librechat-custom-backend-auth init` there (docs/install.md, "Wiring"); until then LibreChat runs its own login';
  const uses = (file) => USES_PACKAGE.test(fs.readFileSync(path.join(root, file), 'utf8'));
  if (s.state === 'stock' && !s.notWired.some(uses)) {
    return { findings: [{ level: 'problem', check: 'wiring', detail: `USE_CUSTOM_BACKEND_AUTH is true but ${version} in ${root} is not wired (${s.notWired.join(', ')}): ${fix}` }], wired: false };
  }
  const findings = s.notWired.map((file) => (uses(file)
    ? { level: 'info', check: 'wiring', detail: `${file}: uses the package in a form init does not make (by hand, or the patches before init); not checked (\`init --dry-run\` shows init's form)` }
    : { level: 'problem', check: 'wiring', detail: `${file} of ${version} in ${root} is not wired (the others are): ${fix}` }));
  for (const p of s.problems) {
    // A file that names the package was wired by hand or by an older wiring: doctor cannot tell more.
    const byHand = p.reason !== 'not found' && uses(p.file);
    findings.push(byHand
      ? { level: 'info', check: 'wiring', detail: `${p.file}: ${p.what}: not in the form init makes (wired by hand, or by an older wiring); not checked` }
      : { level: 'problem', check: 'wiring', detail: `${p.file}: ${p.what}: ${p.reason}, and the file does not use the package: ${fix}` });
  }
  return { findings, wired: false };
}

/**
 * `--check-login USER`: a canary login with the configuration doctor checked (the password from the
 * terminal, with no echo, or from stdin; never from the command line). Nothing is written, no session
 * is kept (the backend's is ended where BACKEND_LOGOUT_URL allows). One finding.
 */
async function checkLoginFinding(native, vars, username, io) {
  const check = 'check-login';
  const password = await readSecret(io, `Password of ${username} at the backend (not shown): `);
  if (!password) return { level: 'problem', check, detail: 'no password: type it at the prompt, or give it on stdin (never on the command line)' };
  let service;
  try {
    service = new native.CustomBackendAuthService(vars);
  } catch (err) {
    return { level: 'problem', check, detail: `not run: ${err.message}` };
  }
  try {
    const r = await service.checkLogin({ username, password });
    const ended = r.backendSessionEnded === undefined || r.backendSessionEnded === null
      ? 'its backend session stays until it expires (no BACKEND_LOGOUT_URL)'
      : r.backendSessionEnded ? 'its backend session was ended' : 'ending its backend session failed';
    return {
      level: 'ok',
      check,
      detail: `the backend accepted ${JSON.stringify(username)}: backend id ${r.backendId}, email ${r.email}, LibreChat user name ${r.username}${r.role ? `, role ${r.role}` : ''}; no user written, no session kept; ${ended}`,
    };
  } catch (err) {
    // The password was right and the backend asks for its own second factor (docs/second-factor.md).
    if (String(err.message).startsWith('[TWO_FACTOR_REQUIRED]')) {
      return { level: 'ok', check, detail: `the backend accepted ${JSON.stringify(username)}'s password and asks for its second factor (BACKEND_MFA_VERIFY_URL): the check stops there; nothing written` };
    }
    // `[CODE] message` from the addon: never a password or token.
    return { level: 'problem', check, detail: `the login failed: ${err.message}` };
  } finally {
    await service.close().catch(() => {});
  }
}

async function doctor(opts, out, io = { stdin: process.stdin, stdout: process.stdout }) {
  const envFile = opts.envFile;
  let loaded;
  try {
    loaded = loadVars(envFile);
  } catch (err) {
    out.err(`${NAME}: cannot read the env file ${envFile} (${err.code || 'unreadable'})`);
    return 2;
  }
  let native;
  try {
    native = require('../binding');
  } catch (err) {
    out.log(`PROBLEM  addon: the native addon cannot be loaded on ${process.platform}-${process.arch} (${err.code || 'load error'})`);
    return 1;
  }

  out.log(`${NAME} doctor (binary built from sources ${native.sourceId().slice(0, 12)})`);
  out.log(`Env file: ${loaded.file ?? '(none in this folder or its parent; process environment only)'}`);
  const report = await native.CustomBackendAuthService.doctor(loaded.vars);
  const wired = wiringFindings(loaded.vars, opts.dir ?? (loaded.file ? path.dirname(loaded.file) : undefined));
  if (wired.wired) {
    // The wiring answers LibreChat's registration and password reset itself while the switch is on.
    for (const f of report.findings) {
      if (f.check === 'ALLOW_REGISTRATION' || f.check === 'ALLOW_PASSWORD_RESET') {
        f.level = 'info';
        f.detail = 'is true, and the wiring answers 403 to LibreChat\'s registration and password reset while the switch is on (customLocalAccountsClosed); false says the same to whoever reads .env';
      }
    }
  }
  report.findings.push(...wired.findings);
  if (opts.checkLogin !== undefined) report.findings.push(await checkLoginFinding(native, loaded.vars, opts.checkLogin, io));

  out.log('');
  out.log('Effective configuration');
  const width = Math.max(...report.config.map((c) => c.name.length));
  for (const { name, value } of report.config) out.log(`  ${name.padEnd(width)} = ${value}`);

  out.log('');
  out.log('Checks');
  for (const f of report.findings) {
    const label = (LABELS[f.level] ?? f.level.toUpperCase()).padEnd(7);
    out.log(`  ${label}  ${f.check}: ${f.detail}`);
  }
  const problems = report.findings.filter((f) => f.level === 'problem').length;
  out.log('');
  out.log(problems === 0 ? 'No problems found.' : `${problems} problem${problems === 1 ? '' : 's'} found.`);
  return problems === 0 ? 0 : 1;
}

async function main(argv, out) {
  const opts = parseArgs(argv);
  if (opts.error) {
    out.err(`${NAME}: ${opts.error}\n`);
    out.err(USAGE);
    return 2;
  }
  if (opts.help) {
    out.log(USAGE);
    return 0;
  }
  if (opts.command === 'doctor') return doctor(opts, out);
  if (opts.command === 'init') {
    const code = await init(opts, out);
    if (code !== 0 || opts.dryRun || opts.revert || opts.noDoctor || opts.docker) return code;
    // Proven before the restart: the configuration init wrote, as LibreChat will read it.
    const root = librechatRoot(opts.dir);
    out.log('');
    const checked = await doctor({ envFile: opts.envFile ?? path.join(root, '.env'), dir: root, checkLogin: opts.checkLogin }, out);
    if (checked !== 0) out.log('init is done, but doctor found the problems above: mend them before LibreChat restarts.');
    return checked;
  }
  if (opts.command === 'uninstall') return init({ ...opts, revert: true }, out);
  out.err(opts.command === undefined ? `${NAME}: a command is required\n` : `${NAME}: unknown command ${opts.command}\n`);
  out.err(USAGE);
  return 2;
}

if (require.main === module) {
  const out = { log: (s) => console.log(s), err: (s) => console.error(s) };
  main(process.argv.slice(2), out).then(
    (code) => process.exit(code),
    (err) => {
      // Errors of the addon carry a `[CODE] message` that never holds a secret.
      console.error(`${NAME}: ${err && err.message ? err.message : 'failed'}`);
      process.exit(1);
    },
  );
}

module.exports = { main, parseArgs, parseEnv };
