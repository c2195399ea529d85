// Apollo Client against a running okrgraph (tests/e2e/test_apollo_client.py runs
// it): ApolloClient + InMemoryCache with relayStylePagination, HttpLink with the
// Bearer token, GraphQLWsLink for the subscription. Prints one JSON object per
// line on stdout: {"event": "subscribing", ...} once the subscription starts
// (the test then publishes a change), then {"event": "done", ...} with what the
// cache shows at each step.
//
// usage: node apollo_client.cjs HTTP_URL WS_URL TOKEN PAGE_SIZE

"use strict";

const {
  ApolloClient,
  InMemoryCache,
  HttpLink,
  gql,
  split,
} = require("@apollo/client/core");
const { relayStylePagination, getMainDefinition } = require("@apollo/client/utilities");
const { GraphQLWsLink } = require("@apollo/client/link/subscriptions");
const { createClient } = require("graphql-ws");
const WebSocket = require("ws");

const [httpUrl, wsUrl, token, pageSizeArg] = process.argv.slice(2);
const pageSize = Number(pageSizeArg);
const authorization = `Bearer ${token}`;

function emit(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

const watchdog = setTimeout(() => {
  emit({ event: "error", message: "timed out" });
  process.exit(2);
}, 45000);

const OBJECTIVES = gql`
  query ApolloCheckObjectives($first: Int, $after: String) {
    objectives(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          title
          progress
          status
          state
          keyResults(first: 20) {
            edges { node { id title kind state progressDriver start target current score status } }
          }
        }
      }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
`;

const CHECK_IN = gql`
  mutation ApolloCheckCheckIn($input: CheckInInput!) {
    checkIn(input: $input) {
      ... on CheckInSuccess {
        checkIn { id value keyResult { id current score status lastCheckInAt } }
      }
      ... on UserError { code message }
    }
  }
`;

const PROGRESS = gql`
  subscription ApolloCheckProgress($ids: [ID!]) {
    progressChanged(ids: $ids) {
      subject {
        __typename
        ... on KeyResult { id score status }
        ... on Objective { id progress status }
      }
      previousValue
    }
  }
`;

const KEY_RESULT = gql`
  fragment ApolloCheckKeyResult on KeyResult { id title current score status }
`;

const wsClient = createClient({
  url: wsUrl,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: authorization },
  lazy: true,
  retryAttempts: 0,
});

const link = split(
  ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === "OperationDefinition" && definition.operation === "subscription";
  },
  new GraphQLWsLink(wsClient),
  new HttpLink({ uri: httpUrl, headers: { Authorization: authorization } }),
);

const cache = new InMemoryCache({
  possibleTypes: { ProgressSubject: ["KeyResult", "Objective"] },
  typePolicies: {
    Query: { fields: { objectives: relayStylePagination(["filter"]) } },
    Objective: { fields: { keyResults: relayStylePagination() } },
  },
});
const client = new ApolloClient({ link, cache });

function cachedKeyResult(id) {
  const cacheId = cache.identify({ __typename: "KeyResult", id });
  return { cacheId, ...cache.readFragment({ id: cacheId, fragment: KEY_RESULT }) };
}

function cachedPage() {
  const data = cache.readQuery({ query: OBJECTIVES, variables: { first: pageSize } });
  return data && data.objectives;
}

function keyResultInPage(page, id) {
  for (const edge of page.edges) {
    for (const kr of edge.node.keyResults.edges) {
      if (kr.node.id === id) return kr.node;
    }
  }
  return null;
}

async function main() {
  const out = { event: "done" };

  // (1) a connection page, then fetchMore for the next, merged by relayStylePagination
  const watched = client.watchQuery({ query: OBJECTIVES, variables: { first: pageSize } });
  watched.subscribe({ error: () => {} }); // watched, as a mounted component's query is
  const firstPage = (await watched.result()).data.objectives;
  const more = await watched.fetchMore({ variables: { after: firstPage.pageInfo.endCursor } });
  out.pages = [firstPage, more.data.objectives].map((p) => ({
    ids: p.edges.map((e) => e.node.id),
    cursors: p.edges.map((e) => e.cursor),
    pageInfo: p.pageInfo,
  }));
  const merged = watched.getCurrentResult().data.objectives;
  out.merged = {
    ids: merged.edges.map((e) => e.node.id),
    cursors: merged.edges.map((e) => e.cursor),
    pageInfo: merged.pageInfo,
  };

  // (2) a check-in: the cached KeyResult (by id and __typename) shows the new score
  const target = merged.edges
    .filter((e) => e.node.state === "ACTIVE")
    .flatMap((e) => e.node.keyResults.edges.map((k) => k.node))
    .find(
      (kr) =>
        kr.state === "ACTIVE" &&
        kr.progressDriver === "CHECK_INS" &&
        kr.kind !== "MILESTONE" &&
        kr.target !== null &&
        kr.target !== kr.current &&
        kr.score < 1,
    );
  if (!target) throw new Error("no active key result to check in on in the first two pages");
  const before = cachedKeyResult(target.id);
  const checkIn = await client.mutate({
    mutation: CHECK_IN,
    variables: { input: { keyResultId: target.id, value: target.target, comment: "apollo" } },
  });
  out.checkIn = {
    keyResultId: target.id,
    value: target.target,
    result: checkIn.data.checkIn,
    before,
    after: cachedKeyResult(target.id),
    inPage: keyResultInPage(cachedPage(), target.id),
  };

  // (3) progressChanged over graphql-ws updates the cached KeyResult in place
  const events = [];
  const received = new Promise((resolve, reject) => {
    const subscription = client
      .subscribe({ query: PROGRESS, variables: { ids: [target.id] } })
      .subscribe({
        next: (result) => {
          events.push(result);
          subscription.unsubscribe();
          resolve();
        },
        error: reject,
      });
  });
  emit({ event: "subscribing", keyResultId: target.id });
  await received;
  out.subscription = {
    events,
    after: cachedKeyResult(target.id),
    inPage: keyResultInPage(cachedPage(), target.id),
  };
  emit(out);
}

main()
  .catch((error) => {
    emit({ event: "error", message: String((error && error.stack) || error) });
    process.exitCode = 1;
  })
  .finally(async () => {
    clearTimeout(watchdog);
    client.stop();
    await wsClient.dispose();
  });
