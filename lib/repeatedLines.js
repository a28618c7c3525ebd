'use strict';

// Log lines that callers can repeat at will (a wrong password, a forged token or event): the first
// of each kind is logged in full, then at most one line per kind per interval (`AUTH_LOG_REPEAT_SECONDS`)
// saying how many more there were. A flood costs a few lines a minute, not one per request.

class RepeatedLines {
  #logger;
  #intervalMs;
  /** kind -> { since, more, level, summary }: `summary(more, seconds)` is the line that counts them. */
  #kinds = new Map();
  #timer = null;

  constructor(logger, intervalMs) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /**
   * Logs `line` at `level`, unless a line of `kind` was logged less than the interval ago: then it
   * is counted, and `summary(count, seconds)` logged once the interval is over.
   */
  log(kind, level, line, summary) {
    if (this.#intervalMs <= 0) return this.#write(level, line);
    const k = this.#kinds.get(kind);
    const now = Date.now();
    if (k && now - k.since < this.#intervalMs) {
      k.more += 1;
      k.summary = summary;
      this.#arm();
      return;
    }
    // The interval is over but its timer has not run yet: its count first, never lost.
    if (k?.more) this.#writeCount(k, now);
    this.#kinds.set(kind, { since: now, more: 0, level, summary });
    this.#write(level, line);
  }

  /** Logs the counts of the kinds whose interval is over (all of them with `all`). */
  flush(all = false) {
    const now = Date.now();
    for (const [kind, k] of this.#kinds) {
      if (!all && now - k.since < this.#intervalMs) continue;
      if (k.more === 0) {
        this.#kinds.delete(kind);
        continue;
      }
      this.#writeCount(k, now);
      // The summary is this kind's line: the next interval starts with it.
      this.#kinds.set(kind, { ...k, since: now, more: 0 });
    }
    this.#arm();
  }

  /** Logs what is still counted and stops the timer. */
  close() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.flush(true); // leaves nothing counted, so no timer either
    this.#kinds.clear();
  }

  /** One timer, at the end of the earliest interval that has something counted. */
  #arm() {
    if (this.#timer) return;
    let due = Infinity;
    for (const k of this.#kinds.values()) if (k.more > 0) due = Math.min(due, k.since + this.#intervalMs);
    if (due === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, Math.max(0, due - Date.now()));
    this.#timer.unref?.();
  }

  #writeCount(k, now) {
    this.#write(k.level, k.summary(k.more, Math.max(1, Math.round((now - k.since) / 1000))));
  }

  #write(level, line) {
    try {
      const write = typeof this.#logger[level] === 'function' ? this.#logger[level] : this.#logger.warn;
      write.call(this.#logger, line);
    } catch {
      // a broken logger is not ours to fix here
    }
  }
}

module.exports = { RepeatedLines };
