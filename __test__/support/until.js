'use strict';

/**
 * Waits until `cond()` (sync or async) holds. The bound is the test's own progress, never a timing
 * assertion: a condition that cannot become true fails with "timed out waiting for <what>".
 */
async function until(cond, what, ms = 20000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

module.exports = { until };
