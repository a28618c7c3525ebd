'use strict';

// Issue 24 items 1 and 5: the documentation stays findable and true. README.md is the landing page,
// docs/ holds one file per reader and task. Here: docs/architecture.md names every source file and
// only files that exist; every relative link of README.md and docs/*.md reaches a file, and every
// #anchor a heading (GitHub's slugs); no text points at the old numbered README sections; the
// README's short install path is the block docs/install.md marks for the release test.

const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const exists = (rel) => fs.existsSync(path.join(ROOT, rel));

/** Files not in the repository yet that a document already links to, each with the reason. */

const DOCS = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Every file under `dir` (relative to the repository), recursively. */
function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(rel));
    else out.push(rel);
  }
  return out;
}

/** The lines of a markdown text outside fenced code blocks, with their line numbers. */
function prose(text) {
  const out = [];
  let fence = null;
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(```|~~~)/.exec(line);
    if (m) {
      if (!fence) fence = m[1];
      else if (fence === m[1]) fence = null;
      return;
    }
    if (!fence) out.push({ line, n: i + 1 });
  });
  return out;
}

/** GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'. */
function slug(heading) {
  return heading
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown file's headings (a repeated heading gets -1, -2, … as on GitHub). */
function anchors(rel) {
  const seen = new Map();
  const out = new Set();
  for (const { line } of prose(read(rel))) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count ? `${base}-${count}` : base);
  }
  return out;
}

/** The markdown links of a file, outside code: `[text](target)`. */
function links(rel) {
  const out = [];
  for (const { line, n } of prose(read(rel))) {
    const text = line.replace(/``[^`]*``|`[^`]*`/g, 'code');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) out.push({ target: m[1], n });
  }
  return out;
}

describe('README.md and docs/*.md: links and anchors', () => {
  let anchorLinks = 0;

  test('there is a landing page and a docs folder', () => {
    expect(DOCS.length).toBeGreaterThan(5);
    expect(read('README.md').split('\n').length).toBeLessThan(400);
  });

  test.each(DOCS)('every relative link of %s reaches an existing file', (doc) => {
    const broken = [];
    for (const { target, n } of links(doc)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
      const file = target.split('#')[0];
      const rel = path.relative(ROOT, path.join(ROOT, path.dirname(doc), file)).split(path.sep).join('/');
      if (!exists(rel)) broken.push(`${doc}:${n} ${target}`);
    }
    expect(broken).toEqual([]);
  });

  test.each(DOCS)('every #anchor link of %s names a heading of its file', (doc) => {
    const broken = [];
    let checked = 0;
    for (const { target, n } of links(doc)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || !target.includes('#')) continue;
      const [file, anchor] = target.split('#');
      const rel = file ? path.relative(ROOT, path.join(ROOT, path.dirname(doc), file)).split(path.sep).join('/') : doc;
      if (!rel.endsWith('.md') || !exists(rel)) continue; // a missing file is the test above
      checked++;
      if (!anchors(rel).has(anchor)) broken.push(`${doc}:${n} ${target}`);
    }
    expect(broken).toEqual([]);
    anchorLinks += checked;
  });

  test('the anchor check saw the cross-references', () => {
    expect(anchorLinks).toBeGreaterThan(50);
  });

  test('the anchors are GitHub\'s', () => {
    expect(slug('Every request: `customJwtStrategy`')).toBe('every-request-customjwtstrategy');
    expect(slug("Docker: LibreChat's official image")).toBe('docker-librechats-official-image');
    expect(slug('Revocation: how it reaches every server, and its bounds')).toBe('revocation-how-it-reaches-every-server-and-its-bounds');
    expect(slug('Bare metal (npm), no Rust')).toBe('bare-metal-npm-no-rust');
    expect(slug('snake_case and-dash')).toBe('snake_case-and-dash');
  });

  test.each(DOCS)('%s points at no numbered README section (the sections are files now)', (doc) => {
    const text = read(doc);
    const stale = [];
    for (const m of text.matchAll(/\bsections?\s+\d+/gi)) {
      if (/RFC \d+\s+$/.test(text.slice(Math.max(0, m.index - 12), m.index))) continue; // an RFC's section
      stale.push(`${doc}:${text.slice(0, m.index).split('\n').length} ${m[0]}`);
    }
    expect(stale).toEqual([]);
    expect(text).not.toMatch(/\]\(#\d+-/); // an anchor of a numbered heading
  });

  test('the README\'s short install path is the block docs/install.md marks for the release test', () => {
    const marked = /<!-- test: install-npm -->\s*```sh\n([\s\S]*?)```/.exec(read('docs/install.md'));
    expect(marked).not.toBeNull();
    // In the README the block is a list item's, indented: the same lines once the indent is off.
    const short = /\n( *)```sh\n(\1cd api\n[\s\S]*?)\1```/.exec(read('README.md'));
    expect(short).not.toBeNull();
    const dedented = short[2].split('\n').map((l) => l.slice(short[1].length)).join('\n');
    expect(dedented).toBe(marked[1]);
  });
});

describe('docs/architecture.md: the code map', () => {
  const text = read('docs/architecture.md');
  const block = /```\n([\s\S]*?)```/.exec(text)[1];

  /**
   * The paths the map names. A line at the left margin names paths from the repository's root (its
   * leading words: `src/`, `bin/cli.js`, `Cargo.toml  build.rs`); a line indented two more than the
   * one above names a file of that line's folder (`src/` → `src/lib.rs`; `index.js …, over lib/:`
   * → `lib/errors.js`); a line indented further continues the description above. File names in a
   * description (`refresh/rules.rs`, `scripts/check-binary.js`) are taken from its folder, else from
   * the root.
   */
  function named() {
    const out = [];
    const stack = []; // the entries above this line: { indent, dir (of the lines indented under it) }
    let entryDir = ''; // the folder of the last entry, for the file names of its description
    const source = /[\w./-]+\.(?:rs|js|sh|ts)\b/g;
    for (const line of block.split('\n')) {
      if (!line.trim()) continue;
      const indent = line.length - line.trimStart().length;
      while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
      const parent = stack.length ? stack[stack.length - 1] : null;
      const words = line.trim().split(/\s+/);
      let description = line.trim();
      if (indent === 0 || (parent && indent === parent.indent + 2)) {
        const base = parent ? parent.dir : '';
        // The leading words that are paths (at the left margin there may be several).
        const lead = [];
        for (const w of words) {
          if (!/^[\w.\/<>-]+$/.test(w) || !/[./]/.test(w) || (lead.length && indent > 0)) break;
          lead.push(w);
        }
        for (const w of lead) if (!w.includes('<')) out.push({ path: base + w, from: line.trim() });
        description = lead.length ? description.slice(description.indexOf(lead[lead.length - 1]) + lead[lead.length - 1].length) : description;
        const own = lead[0] ?? '';
        const over = /over (\S+\/):$/.exec(line.trim());
        entryDir = own.endsWith('/') && !own.includes('<') ? base + own : base;
        stack.push({ indent, dir: over ? over[1] : entryDir });
      }
      for (const m of description.matchAll(source)) {
        const candidates = [entryDir + m[0], m[0]];
        out.push({ path: candidates.find((c) => exists(c)) ?? candidates[0], from: line.trim() });
      }
    }
    return out;
  }

  test('every path it names exists', () => {
    const paths = named();
    expect(paths.length).toBeGreaterThan(50);
    expect(paths.filter((p) => !exists(p.path.replace(/\/$/, '')) && !exists(p.path)).map((p) => `${p.path} (${p.from})`)).toEqual([]);
  });

  test('every backticked path of its prose exists', () => {
    const outside = text.replace(/```[\s\S]*?```/g, '');
    const missing = [...outside.matchAll(/`([\w.-]+\/[\w./-]+|[\w-]+\.(?:js|rs|ts|sh|md))`/g)]
      .map((m) => m[1])
      .filter((p) => !exists(p));
    expect(missing).toEqual([]);
  });

  test('every source file is in it: src/**/*.rs, lib/*.js, scripts/*, bin/*, index.js', () => {
    const sources = [
      ...walk('src').filter((f) => f.endsWith('.rs')),
      ...walk('lib').filter((f) => f.endsWith('.js')),
      ...walk('scripts'),
      ...walk('bin'),
      'index.js',
    ];
    expect(sources.length).toBeGreaterThan(40);
    const paths = new Set(named().map((p) => p.path));
    expect(sources.filter((f) => !paths.has(f))).toEqual([]);
  });
});
