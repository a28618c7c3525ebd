'use strict';

// Asking the operator (`init`'s URLs, `doctor --check-login`'s password): on a terminal only, never
// from the command line. A secret is read with the terminal's echo off, or from stdin when that is
// not a terminal (a pipe or a file), and is never printed.

const fs = require('fs');
const readline = require('readline');

/** Questions on the terminal; `null` when stdin is not one (then nothing is asked). */
function asker(io) {
  if (!io.stdin.isTTY) return null;
  const rl = readline.createInterface({ input: io.stdin, output: io.stdout });
  const ask = (question, fallback) => new Promise((resolve) => {
    rl.question(`${question}${fallback ? ` [${fallback}]` : ''}: `, (a) => resolve(a.trim() || fallback || ''));
  });
  return { ask, close: () => rl.close() };
}

/** A secret typed at the terminal with no echo (Enter ends it, Ctrl-C gives up). */
function typedSecret(io, prompt) {
  const { stdin, stdout } = io;
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (err) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stdout.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk) => {
      for (const ch of String(chunk)) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
      return undefined;
    };
    // Echo off before the prompt shows: a password typed (or pasted) the moment the prompt
    // appears must not reach the terminal in the gap.
    stdin.setRawMode(true);
    stdout.write(prompt);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
  });
}

/** The secret: typed at the terminal, else the first line of stdin. Empty: none given. */
async function readSecret(io, prompt) {
  if (io.stdin.isTTY) return typedSecret(io, prompt);
  let text = '';
  try {
    text = fs.readFileSync(io.stdin.fd ?? 0, 'utf8');
  } catch {
    // no stdin at all
  }
  return text.split(/\r?\n/)[0];
}

module.exports = { asker, readSecret };
