#!/usr/bin/env node
'use strict';
// The import graphs of src/ (Rust modules) and lib/ + index.js (the shim), checked for circles and,
// for src/, against the layer order its folders declare.
//
//   node scripts/check-cycles.js          prints each graph's circles and layer breaches; exit 1 if any
//   node scripts/check-cycles.js --graph  prints the edges as well
//
// Rust: a file is a module (src/a.rs and src/a/mod.rs are `a`, src/a/b.rs is `a::b`). Its edges are
// the modules its paths name, `use` trees and inline paths alike (`crate::`, `super::`, `self::`,
// and a child module's name), each resolved to the deepest module that exists. `mod` declarations
// and the unit-test modules (`#[cfg(test)] mod … { … }`) are not edges: tests may reach anywhere.
// Layers: each folder's mod.rs names, on a `//! May use:` line, the layers (top-level modules) its
// files may use besides their own; a file outside a folder is a layer of its own, used by others.
//
// JS: `require('./…')` between index.js and lib/*.js.

const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');

/** Every .rs file under src/, relative to src/. */
function rustFiles(root, dir = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(root, 'src', dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...rustFiles(root, rel));
    else if (e.name.endsWith('.rs')) out.push(rel);
  }
  return out.sort();
}

/** `a/b.rs` → `a::b`, `a/mod.rs` → `a`, `lib.rs` → `crate`. */
function moduleOf(file) {
  const parts = file.replace(/\.rs$/, '').split('/');
  if (parts[parts.length - 1] === 'mod') parts.pop();
  if (parts.length === 1 && parts[0] === 'lib') return 'crate';
  return parts.join('::');
}

/** Source text without comments, string literals and the `#[cfg(test)] mod … { … }` blocks. */
function production(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      i = text.indexOf('*/', i + 2);
      i = i < 0 ? text.length : i + 2;
    } else if (c === 'r' && /^r#*"/.test(text.slice(i, i + 10)) && !/[\w]/.test(text[i - 1] || '')) {
      const hashes = /^r(#*)"/.exec(text.slice(i))[1];
      const end = text.indexOf(`"${hashes}`, i + 2 + hashes.length);
      i = end < 0 ? text.length : end + 1 + hashes.length;
      out += '""';
    } else if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      out += '""';
    } else if (c === "'" && /^'(\\.|[^\\'])'/.test(text.slice(i, i + 12))) {
      i += /^'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'/.exec(text.slice(i))[0].length;
      out += "' '";
    } else {
      out += c;
      i++;
    }
  }
  // Unit-test modules: from the attribute to the matching brace.
  const re = /#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{/g;
  let m;
  while ((m = re.exec(out))) {
    let depth = 1;
    let j = m.index + m[0].length;
    while (j < out.length && depth) {
      if (out[j] === '{') depth++;
      else if (out[j] === '}') depth--;
      j++;
    }
    out = out.slice(0, m.index) + out.slice(j);
    re.lastIndex = m.index;
  }
  return out;
}

/** The paths of a `use` tree: `a::{b, c::{d, e}}` → [a::b, a::c::d, a::c::e]. */
function expand(tree) {
  tree = tree.replace(/\s+as\s+\w+/g, '').replace(/\s+/g, '');
  const brace = tree.indexOf('{');
  if (brace < 0) return [tree];
  const prefix = tree.slice(0, brace);
  const inner = tree.slice(brace + 1, tree.lastIndexOf('}'));
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === '{') depth++;
    else if (inner[i] === '}') depth--;
    else if (inner[i] === ',' && depth === 0) {
      parts.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(inner.slice(start));
  return parts.filter(Boolean).flatMap((p) => expand(prefix + p));
}

/** The Rust module graph: Map module → Set of modules it uses. */
function rustGraph(root = ROOT) {
  const files = rustFiles(root);
  const modules = new Map(files.map((f) => [moduleOf(f), f]));
  const graph = new Map();
  for (const [mod, file] of modules) {
    const text = production(fs.readFileSync(path.join(root, 'src', file), 'utf8'));
    const own = mod === 'crate' ? [] : mod.split('::');
    const children = new Set([...modules.keys()].filter((m) => m.startsWith(mod === 'crate' ? '' : `${mod}::`)).map((m) => m.slice(mod === 'crate' ? 0 : mod.length + 2).split('::')[0]));
    const paths = [];
    for (const u of text.matchAll(/\buse\s+([^;]+);/g)) paths.push(...expand(u[1]));
    const code = text.replace(/\buse\s+[^;]+;/g, '');
    for (const p of code.matchAll(/\b(?:crate|super|self)(?:::\w+)+/g)) paths.push(p[0]);
    for (const p of code.matchAll(/(?<![:\w])(\w+)::\w+/g)) if (children.has(p[1])) paths.push(`self::${p[0]}`);
    const edges = new Set();
    for (const p of paths) {
      let segs = p.split('::').filter((s) => s && s !== '*');
      if (segs[0] === 'crate') segs = segs.slice(1);
      else if (segs[0] === 'self') segs = [...own, ...segs.slice(1)];
      else if (segs[0] === 'super') {
        let base = own;
        while (segs[0] === 'super') {
          base = base.slice(0, -1);
          segs = segs.slice(1);
        }
        segs = [...base, ...segs];
      } else if (children.has(segs[0])) segs = [...own, ...segs];
      else continue; // an external crate
      for (let n = segs.length; n > 0; n--) {
        const target = segs.slice(0, n).join('::');
        if (modules.has(target)) {
          if (target !== mod) edges.add(target);
          break;
        }
      }
    }
    graph.set(mod, edges);
  }
  return graph;
}

/** The shim's graph: index.js and lib/*.js by their relative requires. */
function jsGraph(root = ROOT) {
  const files = ['index.js', ...fs.readdirSync(path.join(root, 'lib')).filter((f) => f.endsWith('.js')).map((f) => `lib/${f}`)];
  const graph = new Map();
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, file), 'utf8').replace(/^\s*\/\/.*$/gm, '');
    const edges = new Set();
    for (const m of text.matchAll(/require\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)) {
      let target = path.relative(root, path.resolve(path.dirname(path.join(root, file)), m[1]));
      if (!target.endsWith('.js')) target += '.js';
      if (files.includes(target)) edges.add(target);
    }
    graph.set(file, edges);
  }
  return graph;
}

/** The circles of a graph: its strongly connected components of more than one node (Tarjan). */
function circles(graph) {
  let index = 0;
  const stack = [];
  const info = new Map();
  const out = [];
  const visit = (v) => {
    info.set(v, { index, low: index, onStack: true });
    index++;
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!info.has(w)) {
        visit(w);
        info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
      } else if (info.get(w).onStack) {
        info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
      }
    }
    if (info.get(v).low === info.get(v).index) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        info.get(w).onStack = false;
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!info.has(v)) visit(v);
  return out;
}

/** Uses that cross layers against a folder's `//! May use:` line. */
function layerBreaches(graph, root = ROOT) {
  const declared = new Map();
  for (const file of rustFiles(root)) {
    if (!file.endsWith('/mod.rs') || file.split('/').length !== 2) continue;
    const text = fs.readFileSync(path.join(root, 'src', file), 'utf8');
    const m = /^\/\/! May use:\s*(.*)$/m.exec(text);
    declared.set(file.split('/')[0], m ? m[1].replace(/[.`]/g, '').split(/[,\s]+/).filter((s) => s && s !== 'nothing') : null);
  }
  const out = [];
  for (const [layer, allowed] of declared) {
    if (!allowed) {
      out.push(`src/${layer}/mod.rs has no "//! May use:" line`);
      continue;
    }
    for (const [mod, edges] of graph) {
      if (mod.split('::')[0] !== layer) continue;
      for (const target of edges) {
        const other = target.split('::')[0];
        if (other !== layer && !allowed.includes(other)) out.push(`${mod} uses ${target}, but layer ${layer} may use only: ${allowed.join(', ') || 'nothing'}`);
      }
    }
  }
  return out;
}

/** Every circle and layer breach of the checkout at `root`, as lines. */
function problems(root = ROOT) {
  const rust = rustGraph(root);
  return [
    ...circles(rust).map((c) => `src/ circle: ${c.join(' <-> ')}`),
    ...circles(jsGraph(root)).map((c) => `shim circle: ${c.join(' <-> ')}`),
    ...layerBreaches(rust, root),
  ];
}

function main() {
  const rust = rustGraph();
  const js = jsGraph();
  if (process.argv.includes('--graph')) {
    for (const [name, graph] of [['src', rust], ['shim', js]]) {
      for (const [from, to] of graph) console.log(`${name}\t${from}\t-> ${[...to].sort().join(', ')}`);
    }
  }
  const found = problems();
  for (const p of found) console.log(p);
  console.log(`${rust.size} Rust modules, ${js.size} shim files: ${found.length ? `${found.length} problem(s)` : 'no circle, no layer breach'}`);
  process.exitCode = found.length ? 1 : 0;
}

module.exports = { problems, rustGraph, jsGraph, circles, layerBreaches, production, expand };
if (require.main === module) main();
