// The store's front door for those that open the database (the operator, the worker commands):
// the connection and the migrations. Queries are the typed functions of the other store modules;
// nothing outside runtime/src/store imports `postgres` or the connection module (db.ts).
export { connect, type Sql } from './db.js';
export { migrate } from './migrate.js';
