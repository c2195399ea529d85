// PostGraphile 4 as bench/peers.py runs it: node postgraphile_server.js DB_URL PORT ORG_ID
// (NODE_PATH names the npm cache with postgraphile installed). Every request runs in a
// transaction as the RLS-bound app role with the organisation's tenant setting, as
// okrgraph's requests do: pgSettings -> SET LOCAL role okr_app, app.org_id = ORG_ID.
const http = require("http");
const { postgraphile } = require("postgraphile");

const [databaseUrl, port, orgId] = process.argv.slice(2);
const middleware = postgraphile(databaseUrl, "public", {
  pgSettings: { role: "okr_app", "app.org_id": orgId, statement_timeout: "5000", jit: "off" },
  disableQueryLog: true,
  graphiql: false,
  enableQueryBatching: false,
  legacyRelations: "omit",
  retryOnInitFail: false,
});
http.createServer(middleware).listen(Number(port), "127.0.0.1", () => {
  console.log(`postgraphile listening on ${port}`);
});
