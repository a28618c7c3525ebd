'use strict';

// The wiring of the package into a LibreChat folder, by anchors rather than line context (`init`,
// `init --revert`, `doctor`; the shipped .patch files are this table applied to LibreChat's files).
// Each edit turns one piece of LibreChat's code (its anchor, which must be found exactly once) into
// the wired form and back, byte for byte. A file is changed only when every edit of every file can
// be made, so a customised LibreChat is either wired whole or not touched.

const fs = require('fs');
const path = require('path');

const PACKAGE = 'librechat-custom-backend-auth';

/**
 * Templates: `${i}` an indent, `${m}` LibreChat's `middleware.` prefix (v0.8; v0.7.9 destructures
 * the middleware), `${a}` / `${b}` the rest of a line. The same name stands for the same text in a
 * stock and a wired template, so either rebuilds the other.
 */
const HOLES = { i: '[ \\t]*', m: '(?:middleware\\.)?', a: '[^\\n]*?', b: '[^\\n]*' };

function regexOf(template) {
  const seen = new Set();
  let source = '';
  let last = 0;
  for (const hole of template.matchAll(/\$\{([a-z])\}/g)) {
    source += template.slice(last, hole.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const name = hole[1];
    source += seen.has(name) ? `\\k<${name}>` : `(?<${name}>${HOLES[name]})`;
    seen.add(name);
    last = hole.index + hole[0].length;
  }
  source += template.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // An anchor starts a line: `${i}x` must not match inside `yx`.
  return new RegExp(`(?<=^|\\n)${source}`, 'g');
}

const render = (template, holes) => template.replace(/\$\{([a-z])\}/g, (_, name) => holes[name] ?? '');

const requireBlock = (names) => `const {\n${names.map((n) => `  ${n},\n`).join('')}} = require('${PACKAGE}');\n`;

/** Inserts `lines` after the anchor line `anchor`. */
const after = (anchor, lines) => ({ stock: anchor, wired: anchor + lines });
/** Inserts `lines` before the anchor line `anchor`. */
const before = (anchor, lines) => ({ stock: anchor, wired: lines + anchor });

/** The require block of routes/auth.js before #27 (a wiring made then is upgraded in place). */
const AUTH_ROUTES_NAMES_26 = [
  'isCustomBackendAuthEnabled',
  'requireCustomBackendAuth',
  'customBackendLoginController',
  'customRefreshController',
  'customLogoutController',
  'customLogoutAllController',
  'customSessionsController',
  'customEndSessionController',
  'customLocalAccountsClosed',
];
const AUTH_ROUTES_ANCHOR = "${a}require('~/server/controllers/auth/LoginController');${b}\n";

/** The routes the package adds after the refresh route; `extra`: those of later versions. */
const refreshRoutes = (extra = '') =>
  "router.post('/refresh', useCustomAuth ? customRefreshController : refreshController);\n"
  + 'if (useCustomAuth) {\n'
  + "  router.post('/logout/all', ${m}requireJwtAuth, customLogoutAllController);\n"
  + "  router.get('/sessions', ${m}requireJwtAuth, customSessionsController);\n"
  + "  router.delete('/sessions/:sessionId', ${m}requireJwtAuth, customEndSessionController);\n"
  + '  // No local accounts beside backend users: answered as LibreChat answers them when disabled.\n'
  + "  router.post(['/register', '/requestPasswordReset', '/resetPassword'], customLocalAccountsClosed);\n"
  + extra
  + '}\n';

/**
 * LibreChat's files and their edits. `since`: the first version with that code. `earlier`: wired
 * forms of earlier versions of the package, which `init` upgrades and `--revert` takes back too.
 */
const FILES = [
  {
    file: 'api/server/index.js',
    edits: [
      {
        what: 'the package, after the require of ~/strategies',
        ...after("${a}require('~/strategies');${b}\n", requireBlock([
          'isCustomBackendAuthEnabled',
          'customJwtStrategy',
          'customBackendStrategy',
          'customBackendEventsHandler',
          'appendCustomBackendMetrics',
        ])),
      },
      {
        what: 'the signed events route, before app.use(express.json(...))',
        ...before('${i}app.use(express.json(${b}\n',
          '${i}// Signed backend events: the signature covers the raw body, so before express.json (404 when off).\n'
          + "${i}app.post('/api/auth/custom-backend/events', customBackendEventsHandler);\n"),
      },
      {
        what: "the strategies: passport.use(jwtLogin());",
        stock: '${i}passport.use(jwtLogin());\n',
        wired: '${i}const useCustomAuth = isCustomBackendAuthEnabled();\n'
          + "${i}passport.use(useCustomAuth ? customJwtStrategy() : jwtLogin()); // both are named 'jwt'\n"
          + '${i}if (useCustomAuth) {\n'
          + "${i}  passport.use(customBackendStrategy()); // 'custom-backend'\n"
          + '${i}}\n',
      },
      {
        what: "the metrics, before app.use('/metrics', metricsRouter);",
        since: '0.8.6',
        ...before("${i}app.use('/metrics', metricsRouter);\n",
          '${i}if (useCustomAuth) {\n'
          + "${i}  app.use('/metrics', appendCustomBackendMetrics()); // the package's metrics after LibreChat's\n"
          + '${i}}\n'),
      },
    ],
  },
  {
    file: 'api/server/routes/auth.js',
    edits: [
      {
        what: "the package, after the require of LoginController",
        ...after(AUTH_ROUTES_ANCHOR, requireBlock([...AUTH_ROUTES_NAMES_26, 'customTwoFactorController'])
          + 'const useCustomAuth = isCustomBackendAuthEnabled();\n'),
        earlier: [AUTH_ROUTES_ANCHOR + requireBlock(AUTH_ROUTES_NAMES_26) + 'const useCustomAuth = isCustomBackendAuthEnabled();\n'],
      },
      {
        what: "the logout route: router.post('/logout', requireJwtAuth, logoutController);",
        stock: "router.post('/logout', ${m}requireJwtAuth, logoutController);\n",
        wired: "router.post(\n  '/logout',\n  ${m}requireJwtAuth,\n  useCustomAuth ? customLogoutController : logoutController,\n);\n",
      },
      {
        what: "the login's authentication: ldapAuth ? requireLdapAuth : requireLocalAuth,",
        stock: '${i}ldapAuth ? ${m}requireLdapAuth : ${m}requireLocalAuth,\n',
        wired: '${i}useCustomAuth\n${i}  ? requireCustomBackendAuth\n${i}  : ldapAuth\n'
          + '${i}    ? ${m}requireLdapAuth\n${i}    : ${m}requireLocalAuth,\n',
      },
      {
        what: "the login's controller: loginController, (the last of the login route's chain)",
        stock: '${i}loginController,\n',
        wired: '${i}useCustomAuth ? customBackendLoginController : loginController,\n',
      },
      {
        what: "the refresh route: router.post('/refresh', refreshController);",
        stock: "router.post('/refresh', refreshController);\n",
        // Before LibreChat's own 2FA route (every version registers it after refresh): a backend
        // second factor's code goes to the backend, any other on to LibreChat's controller.
        wired: refreshRoutes("  router.post('/2fa/verify-temp', customTwoFactorController);\n"),
        earlier: [refreshRoutes()],
      },
    ],
  },
  {
    file: 'api/server/routes/config.js',
    edits: [
      {
        what: 'the package, after the require of ~/server/services/Config/ldap',
        ...after("${a}require('~/server/services/Config/ldap');${b}\n",
          `const { isCustomBackendAuthEnabled, customBackendStartupConfig } = require('${PACKAGE}');\n`
          + 'const useCustomAuth = isCustomBackendAuthEnabled();\n'),
      },
      {
        what: 'the login page: after the startup config\'s "if (ldap) { payload.ldap = ldap; }"',
        ...after('${i}if (ldap) {\n${i}  payload.ldap = ldap;\n${i}}\n',
          '\n${i}if (useCustomAuth) {\n'
          + '${i}  customBackendStartupConfig(payload); // user-name login; no registration or password reset\n'
          + '${i}}\n'),
      },
    ],
  },
  {
    file: 'api/server/routes/admin/auth.js',
    since: '0.8.3',
    edits: [
      {
        what: 'the package, after the require of LoginController',
        ...after("${a}require('~/server/controllers/auth/LoginController');${b}\n",
          `const {\n  isCustomBackendAuthEnabled,\n  requireCustomBackendAuth,\n  customBackendLoginController,\n} = require('${PACKAGE}');\n`
          + 'const useCustomAuth = isCustomBackendAuthEnabled();\n'),
      },
      {
        what: "the admin login's authentication: middleware.requireLocalAuth,",
        stock: '${i}middleware.requireLocalAuth,\n',
        wired: '${i}useCustomAuth ? requireCustomBackendAuth : middleware.requireLocalAuth,\n',
      },
      {
        what: "the admin login's controller: loginController,",
        stock: '${i}loginController,\n',
        wired: '${i}useCustomAuth ? customBackendLoginController : loginController,\n',
      },
    ],
  },
];

/** `v0.8.7` -> [0, 8, 7]; null when it is not a version. */
function versionOf(text) {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(String(text ?? '').trim());
  return m ? m.slice(1, 4).map(Number) : null;
}

function atLeast(version, since) {
  if (!since || !version) return true;
  const want = versionOf(since);
  for (let k = 0; k < 3; k += 1) if (version[k] !== want[k]) return version[k] > want[k];
  return true;
}

/** LibreChat's version from its root package.json (null: not found or not a version). */
function librechatVersion(root) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    return { text: pkg.version ?? null, version: versionOf(pkg.version) };
  } catch {
    return { text: null, version: null };
  }
}

function matches(text, template) {
  return [...text.matchAll(regexOf(template))];
}

/** One edit's state in `text`: 'stock', 'wired', 'earlier' (an earlier version's wired form), or
 * why it cannot be told. */
function stateOf(text, edit) {
  const wired = matches(text, edit.wired);
  if (wired.length === 1) return { state: 'wired', match: wired[0] };
  if (wired.length > 1) return { state: 'ambiguous', count: wired.length, form: 'wired' };
  for (const form of edit.earlier ?? []) {
    const earlier = matches(text, form);
    if (earlier.length === 1) return { state: 'earlier', match: earlier[0] };
  }
  const stock = matches(text, edit.stock);
  if (stock.length === 1) return { state: 'stock', match: stock[0] };
  return stock.length === 0 ? { state: 'missing' } : { state: 'ambiguous', count: stock.length, form: 'stock' };
}

/** A text with LF line ends, and how to give it back its own (CRLF when it had only those). */
function lfText(raw) {
  const crlf = raw.includes('\r\n') && !/(^|[^\r])\n/.test(raw);
  return { text: crlf ? raw.replace(/\r\n/g, '\n') : raw, back: (t) => (crlf ? t.replace(/\n/g, '\r\n') : t) };
}

/**
 * Replaces each edit's match by its other form (`to`), from the end so offsets hold. A hole an
 * anchor does not show (the refresh route's `${m}`) takes the file's, from its other anchors.
 */
function transform(text, found, all, to) {
  const fileHoles = Object.assign({}, ...all.map((f) => f.match.groups ?? {}));
  let out = text;
  for (const f of [...found].sort((x, y) => y.match.index - x.match.index)) {
    const holes = { ...fileHoles, ...f.match.groups };
    out = out.slice(0, f.match.index) + render(f.edit[to], holes) + out.slice(f.match.index + f.match[0].length);
  }
  return out;
}

/**
 * What wiring `root` (a LibreChat folder) would do: per file, each edit's state. `problems` lists
 * the anchors that are missing or found more than once, with the lines to add by hand.
 */
function inspect(root) {
  const { text: versionText, version } = librechatVersion(root);
  const files = [];
  const problems = [];
  for (const spec of FILES) {
    const full = path.join(root, spec.file);
    const present = fs.existsSync(full);
    if (spec.since && !atLeast(version, spec.since) && !present) continue;
    if (!present) {
      if (spec.since && !version) continue; // a version we cannot tell and no such file: it has none
      problems.push({ file: spec.file, what: 'the file', reason: 'not found' });
      continue;
    }
    const { text, back } = lfText(fs.readFileSync(full, 'utf8'));
    const edits = [];
    for (const edit of spec.edits) {
      if (!atLeast(version, edit.since)) continue;
      const s = stateOf(text, edit);
      if (s.state === 'missing' && edit.since && !version) continue; // unknown version: not there
      if (s.state === 'missing' || s.state === 'ambiguous') {
        problems.push({
          file: spec.file,
          what: edit.what,
          reason: s.state === 'missing' ? 'anchor not found' : `anchor found ${s.count} times (${s.form} form)`,
          anchor: render(edit.stock, { m: version && version[1] === 7 ? '' : 'middleware.' }),
          lines: render(edit.wired, { m: version && version[1] === 7 ? '' : 'middleware.' }),
        });
        continue;
      }
      edits.push({ edit, ...s });
    }
    files.push({ file: spec.file, full, text, back, edits });
  }
  return { root, versionText, version, files, problems };
}

/** Wires (`to` 'wired') or unwires ('stock') every file, or none (see `problems`); an earlier
 * version's wiring is upgraded, or taken back. */
function change(root, to, { dryRun = false } = {}) {
  const plan = inspect(root);
  const from = to === 'wired' ? ['stock', 'earlier'] : ['wired', 'earlier'];
  const changes = [];
  for (const f of plan.files) {
    const todo = f.edits.filter((e) => from.includes(e.state));
    if (todo.length === 0) continue;
    const after = transform(f.text, todo, f.edits, to);
    // The old lines of each anchor, which a diff shows whole (the patches' hunks then hold them).
    const lineAt = (index) => f.text.slice(0, index).split('\n').length - 1;
    const anchors = todo.map((e) => [lineAt(e.match.index), lineAt(e.match.index + e.match[0].length)]);
    changes.push({ file: f.file, full: f.full, before: f.text, after, write: f.back(after), original: f.back(f.text), count: todo.length, anchors });
  }
  if (plan.problems.length > 0) return { ...plan, changes, written: false };
  if (!dryRun) {
    // Each file whole (written beside, then renamed over it); a failure puts back those done.
    const replaceWith = (c, text) => {
      const tmp = `${c.full}.${PACKAGE}.tmp`;
      fs.writeFileSync(tmp, text, { mode: fs.statSync(c.full).mode });
      fs.renameSync(tmp, c.full);
    };
    const done = [];
    try {
      for (const c of changes) {
        replaceWith(c, c.write);
        done.push(c);
      }
    } catch (err) {
      for (const c of done) replaceWith(c, c.original);
      throw err;
    }
  }
  return { ...plan, changes, written: !dryRun && changes.length > 0 };
}

/** Where the wiring stands: 'wired', 'stock' (not wired), 'earlier' (wired by an earlier version
 * of the package: `init` upgrades it), 'partial', or 'unknown' (problems). */
function wiringState(root) {
  const plan = inspect(root);
  const states = new Set(plan.files.flatMap((f) => f.edits.map((e) => e.state)));
  let state = 'unknown';
  if (plan.problems.length === 0) {
    if (states.has('earlier') && !states.has('stock')) state = 'earlier';
    else state = states.size === 1 ? [...states][0] : 'partial';
  }
  const stockFiles = plan.files.filter((f) => f.edits.some((e) => e.state === 'stock')).map((f) => f.file);
  return { state, versionText: plan.versionText, problems: plan.problems, notWired: stockFiles };
}

/**
 * A unified diff of `before` -> `after` (LF text), 3 lines of context, for --dry-run and the
 * patches; the old lines [from, to) of each of `anchors` are shown whole.
 */
function unifiedDiff(file, before, after, anchors = []) {
  const ops = diffLines(before.split('\n'), after.split('\n'));
  let oldLine = 0;
  for (const op of ops) {
    op.old = oldLine;
    if (op.t !== '+') oldLine += 1;
  }
  const shown = (op) => op.t !== ' ' || anchors.some(([from, to]) => op.old >= from && op.old < to);
  const hunks = [];
  let cur = null;
  ops.forEach((op, k) => {
    if (!shown(op)) return;
    const lo = Math.max(0, k - 3);
    if (cur && lo <= cur.end) cur.end = Math.min(ops.length, k + 4);
    else hunks.push((cur = { start: lo, end: Math.min(ops.length, k + 4) }));
  });
  if (hunks.length === 0) return '';
  let out = `diff --git a/${file} b/${file}\n--- a/${file}\n+++ b/${file}\n`;
  for (const h of hunks) {
    const slice = ops.slice(h.start, h.end);
    const aStart = ops.slice(0, h.start).filter((o) => o.t !== '+').length + 1;
    const bStart = ops.slice(0, h.start).filter((o) => o.t !== '-').length + 1;
    const aLen = slice.filter((o) => o.t !== '+').length;
    const bLen = slice.filter((o) => o.t !== '-').length;
    out += `@@ -${aStart},${aLen} +${bStart},${bLen} @@\n`;
    for (const o of slice) out += `${o.t}${o.line}\n`;
  }
  return out;
}

/** Line operations turning `a` into `b` (a longest common subsequence; the files are small). */
function diffLines(a, b) {
  // The last element of split('\n') is the text after the final newline (usually ''): not a line.
  const A = a.slice(0, -1);
  const B = b.slice(0, -1);
  const n = A.length;
  const m = B.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let x = n - 1; x >= 0; x -= 1) {
    for (let y = m - 1; y >= 0; y -= 1) {
      lcs[x][y] = A[x] === B[y] ? lcs[x + 1][y + 1] + 1 : Math.max(lcs[x + 1][y], lcs[x][y + 1]);
    }
  }
  const ops = [];
  let x = 0;
  let y = 0;
  while (x < n || y < m) {
    if (x < n && y < m && A[x] === B[y]) {
      ops.push({ t: ' ', line: A[x] });
      x += 1;
      y += 1;
    } else if (x < n && (y === m || lcs[x + 1][y] >= lcs[x][y + 1])) {
      ops.push({ t: '-', line: A[x] });
      x += 1;
    } else {
      ops.push({ t: '+', line: B[y] });
      y += 1;
    }
  }
  return ops;
}

module.exports = { FILES, inspect, change, wiringState, unifiedDiff, lfText };
