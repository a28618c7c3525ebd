#!/usr/bin/env node
'use strict';

// The table that ends a CI run: each step's duration beside its usual one, and the steps that took
// more than twice as long named. Usual: the median of the last five passed runs on this machine with
// the cache in the same state (the history is kept in the build cache), else the figure measured
// when the pipeline was last changed (.ci/usual-times.tsv; docs/testing.md).
//
//   node .ci/report.js STEP-LOG warm|cold HISTORY-FILE passed|failed

const fs = require('fs');
const path = require('path');

const [stepLog, state, historyFile, result] = process.argv.slice(2);
const SLOW = 2;
const KEEP = 5;

const rows = (file) => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
  } catch {
    return [];
  }
};

const steps = rows(stepLog).map(([name, seconds, rc]) => ({ name, seconds: Number(seconds), rc }));
const measured = {};
for (const [name, warm, cold] of rows(path.join(__dirname, 'usual-times.tsv')).slice(1)) {
  measured[name] = Number(state === 'warm' ? warm : cold);
}
// History lines: state, step, seconds (passed runs only).
const history = rows(historyFile).filter(([s]) => s === state);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
};
const usual = (name) => {
  const seen = history.filter(([, n]) => n === name).map(([, , s]) => Number(s)).slice(-KEEP);
  return seen.length ? median(seen) : measured[name];
};

const width = Math.max(...steps.map((s) => s.name.length), 4);
const fmt = (s) => (s === undefined || Number.isNaN(s) ? '-' : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`);
const lines = [`${'step'.padEnd(width)}  took   usual  (cache ${state})`];
const slow = [];
for (const s of steps) {
  const u = usual(s.name);
  const flag = u !== undefined && s.seconds > SLOW * Math.max(u, 5) ? '  SLOW' : s.rc !== '0' ? '  FAILED' : '';
  if (flag === '  SLOW') slow.push(`${s.name} (${fmt(s.seconds)}, usually ${fmt(u)})`);
  lines.push(`${s.name.padEnd(width)}  ${fmt(s.seconds).padStart(5)}  ${fmt(u).padStart(5)}${flag}`);
}
const total = steps.reduce((a, s) => a + s.seconds, 0);
lines.push(`${'total'.padEnd(width)}  ${fmt(total).padStart(5)}`);
console.log(lines.join('\n'));
console.log(slow.length ? `More than ${SLOW}x their usual time: ${slow.join('; ')}` : `No step took more than ${SLOW}x its usual time.`);

if (result === 'passed' && historyFile) {
  fs.mkdirSync(path.dirname(historyFile), { recursive: true });
  fs.appendFileSync(historyFile, steps.map((s) => `${state}\t${s.name}\t${s.seconds}\n`).join(''));
}
