'use strict';

/**
 * Copies of the bench user for the memory rows: `n` users written into `users` (a MongoDB
 * collection) in batches of 5000, each the template with its own _id, email, username and backend
 * id. Returns their _id hex strings in order.
 */
async function insertUserCopies(users, template, n) {
  const { ObjectId } = require('mongodb');
  const ids = [];
  for (let i = 0; i < n; i += 5000) {
    const docs = [];
    for (let j = i; j < Math.min(n, i + 5000); j++) {
      const _id = new ObjectId();
      ids.push(_id.toHexString());
      docs.push({ ...template, _id, email: `mem-${j}@example.com`, username: `mem-${j}`, idOnTheSource: `mem-${j}` });
    }
    await users.insertMany(docs, { ordered: false });
  }
  return ids;
}

module.exports = { insertUserCopies };
