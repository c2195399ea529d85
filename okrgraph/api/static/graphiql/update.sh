#!/usr/bin/env bash
# Re-vendor GraphiQL's browser assets from the npm registry (run from anywhere;
# needs npm). Change a version below, run this, check the page (the GraphiQL
# browser test in tests/e2e/test_graphiql_offline.py), and update VENDORED.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent react@18.2.0 react-dom@18.2.0 graphiql@3.8.3 @graphiql/plugin-explorer@1.0.2 >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
cp react-18.2.0/package/umd/react.production.min.js "$here/"
cp react-dom-18.2.0/package/umd/react-dom.production.min.js "$here/"
cp graphiql-3.8.3/package/graphiql.min.js graphiql-3.8.3/package/graphiql.min.css "$here/"
cp graphiql-plugin-explorer-1.0.2/package/dist/index.umd.js "$here/plugin-explorer.umd.js"
cp graphiql-plugin-explorer-1.0.2/package/dist/style.css "$here/plugin-explorer.css"
cp react-18.2.0/package/LICENSE "$here/LICENSE.react.txt"
cp graphiql-3.8.3/package/LICENSE "$here/LICENSE.graphiql.txt"
(cd "$here" && sha256sum ./*.js ./*.css)
