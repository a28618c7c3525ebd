'use strict';

// The package's block in LibreChat's .env (`init`): the switch, the backend URLs and generated keys,
// between two marker lines. Lines outside the block stay as they are, except a setting that would
// keep the package off or stop backend logins (`USE_CUSTOM_BACKEND_AUTH`, `ALLOW_EMAIL_LOGIN` not
// true): that line is kept, commented out with a marker, and `init --revert` restores it and removes
// the block, byte for byte.

const crypto = require('crypto');

const BEGIN = '# >>> librechat-custom-backend-auth (written by `init`; `init --revert` removes it)';
const BEGIN_ADDED_NEWLINE = `${BEGIN} (a newline was added above)`;
const BEGIN_CREATED = `${BEGIN} (the file was created for it)`;
const HEADERS = [BEGIN, BEGIN_ADDED_NEWLINE, BEGIN_CREATED];
const END = '# <<< librechat-custom-backend-auth';
/** A line of the operator's that init set aside: the original follows the prefix verbatim. */
const SET_ASIDE = '#librechat-custom-backend-auth set aside: ';

/** Settings outside the block that would keep the package off or stop backend logins, and the value they need. */
const NEEDED_OUTSIDE = {
  USE_CUSTOM_BACKEND_AUTH: 'true',
  // validateEmailLogin answers 403 to every login form post when ALLOW_EMAIL_LOGIN is set and not true.
  ALLOW_EMAIL_LOGIN: 'true',
};

/** Settings with a generated value: 32 random bytes as hex, from the operating system's CSPRNG. */
const GENERATED = new Set(['BACKEND_TOKEN_ENCRYPTION_KEY', 'BACKEND_EVENTS_SECRET']);
const generate = () => crypto.randomBytes(32).toString('hex');

const assignment = (line) => /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)$/.exec(line);

/** The .env's lines: the block's own (name -> value), the rest, and what was set aside. */
function parse(text) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => HEADERS.includes(l));
  const end = start < 0 ? -1 : lines.indexOf(END, start);
  // A start line without its end line (edited by hand): nothing can be told apart safely.
  const damaged = start >= 0 && end < 0;
  const block = new Map();
  if (start >= 0 && end > start) {
    for (const l of lines.slice(start + 1, end)) {
      const m = assignment(l);
      if (m) block.set(m[1], m[2]);
    }
  }
  const outside = new Map();
  lines.forEach((l, k) => {
    if (start >= 0 && k >= start && k <= end) return;
    const m = assignment(l);
    if (m) outside.set(m[1], { value: unquote(m[2]), line: k });
  });
  return { lines, start, end, block, outside, damaged };
}

function unquote(raw) {
  const v = raw.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.endsWith(v[0])) return v.slice(1, -1);
  return v.replace(/\s+#.*$/, '');
}

/**
 * The .env text with the block holding `wanted` (name -> value or null for generated). A value the
 * block already holds is kept unless `replace` names it; a setting the operator has outside the
 * block is left there and not repeated. Returns { text, changes } (changes: what to show).
 */
function write(text, wanted, { replace = new Set(), created = false } = {}) {
  const p = parse(text);
  const changes = [];
  // The block's own lines stay, in their order (the operator may have added settings or comments).
  const body = p.start >= 0 ? p.lines.slice(p.start + 1, p.end) : [];
  const lineOf = (name) => body.findIndex((l) => assignment(l)?.[1] === name);
  const put = (name, value, change) => {
    const k = lineOf(name);
    if (k >= 0) body[k] = `${name}=${value}`;
    else body.push(`${name}=${value}`);
    changes.push(change);
  };
  for (const [name, value] of Object.entries(wanted)) {
    if (p.outside.has(name)) {
      // Yours stays; one that would keep the package off is set aside below.
      const needed = NEEDED_OUTSIDE[name];
      if (!needed || p.outside.get(name).value.trim().toLowerCase() === needed) {
        changes.push({ name, what: 'kept', detail: 'set outside the block (yours)' });
      }
      continue;
    }
    const had = p.block.get(name);
    if (had !== undefined && !replace.has(name)) {
      changes.push({ name, what: 'kept', detail: 'already in the block' });
      continue;
    }
    if (had !== undefined && value !== null && shown(value) === had) continue;
    const v = value ?? (GENERATED.has(name) ? generate() : '');
    put(name, shown(v), { name, what: had === undefined ? 'added' : 'replaced', secret: GENERATED.has(name) });
  }
  const lines = [...p.lines];
  // Settings that would stop backend logins: set aside (the original line kept after a marker).
  for (const [name, needed] of Object.entries(NEEDED_OUTSIDE)) {
    const o = p.outside.get(name);
    if (!o || o.value.trim().toLowerCase() === needed) continue;
    lines[o.line] = `${SET_ASIDE}${lines[o.line]}`;
    put(name, needed, { name, what: 'set aside', detail: `your line (${o.value}) is commented out, init --revert restores it; ${needed} in the block` });
  }
  // The block goes where it was, or at the end.
  let header = BEGIN;
  let at;
  if (p.start >= 0) {
    header = lines[p.start];
    lines.splice(p.start, p.end - p.start + 1);
    at = p.start;
  } else {
    if (created) {
      header = BEGIN_CREATED;
      lines.pop();
    } else if (lines.length > 0 && lines[lines.length - 1] !== '') {
      // A file without a final newline gets one, which --revert takes away again.
      header = BEGIN_ADDED_NEWLINE;
    } else {
      lines.pop(); // the '' after the final newline
    }
    at = lines.length;
  }
  lines.splice(at, 0, header, ...body, END);
  let out = lines.join('\n');
  if (p.start < 0) out += '\n';
  return { text: out, changes };
}

/** A value as dotenv reads it back: quoted when it holds a space, a quote or a `#`. */
const shown = (v) => (/[\s#"'`]/.test(v) ? JSON.stringify(v) : v);

/** The .env text without the block, with every set-aside line back as it was. */
function remove(text) {
  const p = parse(text);
  if (p.start < 0 || p.end < 0) {
    return { text: text.split('\n').map((l) => (l.startsWith(SET_ASIDE) ? l.slice(SET_ASIDE.length) : l)).join('\n'), removed: false, created: false };
  }
  const addedNewline = p.lines[p.start] === BEGIN_ADDED_NEWLINE;
  const created = p.lines[p.start] === BEGIN_CREATED;
  const lines = p.lines.filter((_, k) => k < p.start || k > p.end)
    .map((l) => (l.startsWith(SET_ASIDE) ? l.slice(SET_ASIDE.length) : l));
  let out = lines.join('\n');
  if (addedNewline && out.endsWith('\n')) out = out.slice(0, -1);
  return { text: out, removed: true, created };
}

module.exports = { write, remove, parse, GENERATED, BEGIN, END };
