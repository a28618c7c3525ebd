#!/usr/bin/env node
'use strict';

// `npx librechat-custom-backend-auth doctor [--env-file path | --env path]`: prints the effective configuration
// (secrets redacted), checks that each backend URL answers (sending no credentials), that the
// database is reachable and has the indexes LibreChat's models define for `users`, `sessions` and
// `balances`, and the package's own. The env file: --env-file, else ./.env, else ../.env.
// Exit code: 0 without problems, 1 with any problem (one PROBLEM line each), 2 on a usage error.
// The checks and the redaction happen in the native addon (src/doctor/); this file reads the
// environment and prints.

const fs = require('fs');
const path = require('path');

const NAME = 'librechat-custom-backend-auth';

const USAGE = `Usage: ${NAME} <command> [options]

Commands:
  doctor                 Show the effective configuration (secrets redacted) and check it:
                         each backend URL answers (no credentials are sent), the database is
                         reachable and has the indexes of LibreChat's models on users,
                         sessions and balances and the package's own. Without NODE_ENV it
                         checks as production (what \`npm run backend\` sets).
                         Exits 0 when there is no problem, 1 otherwise.

Options:
  --env-file <path>      Read variables from this file (default: .env in the current folder,
  --env <path>           else in its parent: LibreChat's root when run in its api/ folder).
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
  const opts = { command: undefined, envFile: undefined, help: false, error: undefined };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      opts.help = true;
    } else if (arg === '--env-file' || arg === '--env') {
      if (i + 1 >= argv.length) return { ...opts, error: `${arg} needs a path` };
      opts.envFile = argv[(i += 1)];
    } else if (/^--env(-file)?=/.test(arg)) {
      opts.envFile = arg.slice(arg.indexOf('=') + 1);
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

async function doctor(envFile, out) {
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
  if (opts.command === 'doctor') return doctor(opts.envFile, out);
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
