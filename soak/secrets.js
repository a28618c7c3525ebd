'use strict';

/**
 * Every secret the run used (passwords, access and refresh tokens, cookie values, backend tokens,
 * configured secrets and keys), and a search of log lines for any of them. Secrets are indexed by
 * their first 8 characters, so each line costs one map lookup per character.
 */

const PREFIX = 8;

class Secrets {
  constructor() {
    this.all = new Set();
    this.byPrefix = new Map();
  }

  add(s) {
    if (typeof s !== 'string' || s.length < PREFIX || this.all.has(s)) return;
    this.all.add(s);
    const p = s.slice(0, PREFIX);
    const list = this.byPrefix.get(p);
    if (list) list.push(s);
    else this.byPrefix.set(p, [s]);
  }

  /** The first secret `line` holds, or null. */
  find(line) {
    for (let i = 0; i + PREFIX <= line.length; i++) {
      const list = this.byPrefix.get(line.slice(i, i + PREFIX));
      if (!list) continue;
      for (const s of list) if (line.startsWith(s, i)) return s;
    }
    return null;
  }
}

/** Shows a secret by its start only. */
const redact = (line, secret) => line.split(secret).join(`${secret.slice(0, 4)}…[secret]`).slice(0, 200);

module.exports = { Secrets, redact };
