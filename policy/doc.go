// Package policy parses, validates and compiles the policy file that says
// which requests scopegate lets through, and normalizes request paths so
// that a path is matched the way an upstream will read it.
//
// # The policy file
//
//	version: 1
//	default: deny                # for requests no route matches: deny or authenticated
//	routes:
//	  - name: health
//	    match: { path: /healthz }
//	    public: true             # no token needed
//	  - name: read-orders
//	    match: { methods: [GET, HEAD], path: "/orders/**" }
//	    require: { scopes: { all_of: [orders:read] } }
//	  - name: create-order
//	    match: { hosts: [api.example.com], methods: [POST], path: /orders }
//	    require:
//	      scopes: { any_of: [orders:write, orders:admin] }
//	      issuers: [https://idp.example.com] # the token's iss
//	      clients: [billing-svc]             # client_id allowlist
//	      audiences: [orders-api]            # narrows the issuer's audiences
//	  - name: admin
//	    match: { path: "/admin/**" }
//	    deny: true
//
// A route is public (no token needed), deny (always refused), or, with or
// without a require block, open to any valid token that meets the block.
// Requests that no route matches get the default: deny, or authenticated
// (any valid token). Unknown fields, values of the wrong type and duplicate
// keys are errors. Parse reports every problem of a file at once, each with
// the file, line and field.
//
// A policy may also hold:
//
//   - mode: dry_run, policy-wide or per route (Route.DryRun): what such a
//     route, or the policy for requests no route matches, would deny is
//     allowed, and the decision says it would have denied it.
//   - issuers: the scopes each identity provider grants, for Lint, which
//     checks required scopes and required issuers against it.
//   - tests: test cases (Test), also read from files of their own by
//     ParseTests.
//
// docs/policy.md is the reference for people; docs/policy.schema.json and
// docs/policy-tests.schema.json are JSON Schemas for their editors.
//
// # Tooling
//
// Lint finds what is valid but likely wrong, Precedence explains why one
// route beats another, and Watcher reloads a policy file when it changes.
//
// # Path patterns
//
// A pattern is a path whose segments are literals, * or {name} (any one
// segment; the name is documentation), or, as the last segment only, **
// (any number of segments, none included: /orders/** matches /orders,
// /orders/ and /orders/1/items). /** matches every path. Literal segments
// are normalized like request paths, so /caf%65 is /cafe and
// /jobs/a%3Arun is /jobs/a:run; a pattern that normalization rejects, with
// a dot segment, or with %2A (which would read as a wildcard), is an error.
//
// A trailing slash is insignificant: /orders/ and /orders are the same
// pattern and the same request path. Most upstreams serve both alike, so
// telling them apart would let a request for /admin/ pass a route written
// for /admin.
//
// # Precedence
//
// The routes that could decide a request are ordered, and the first whose
// host, path and method constraints all match wins:
//
//  1. Host: routes listing the request's host come first, then routes
//     listing a wildcard that covers it, longer suffix first
//     (*.eu.example.com before *.example.com), then routes listing no host.
//  2. Path, compared segment by segment from the left: a literal segment
//     comes before * or {name}, which comes before a final /**; a pattern
//     that ends with the path comes before one that goes on with /**.
//  3. Method: a route listing the request's method comes before one
//     listing none.
//  4. Context: a route whose match.context the request's route context
//     (Envoy's context_extensions) meets comes before one without, and
//     of two, the one whose context holds the other's. Routes without a
//     context pay nothing for it: a leaf of the trie holds its context
//     routes apart.
//
// Because every constraint must match, a route that matches the path but
// not the method does not stop the search: if /orders has a route for GET
// only, a POST to /orders is decided by the next route in the order, such
// as /**. Routes that would tie for some request, such as two routes with
// the same path and hosts that both list GET, or that differ only in
// contexts one request can meet with neither holding the other, make the
// policy invalid, so that the order of the file never decides anything.
//
// # Workload identity
//
// require.principals lists patterns of the mTLS peer's principal (see
// Requirement.PrincipalAllowed): SPIFFE IDs, parsed with go-spiffe, exact
// or ending in /* or /**, and other principals matched exactly.
// require.token: false admits a peer on its principal alone.
//
// Hosts are compared without case, port or trailing dot, once
// ParseAuthority has split the request's authority. A wildcard host
// *.example.com matches a.example.com and a.b.example.com, not example.com,
// as Envoy's virtual hosts do. Methods are compared without case, and a
// route listing GET also matches HEAD unless it lists HEAD or another
// route listing HEAD takes it (see Policy.Match); paths are compared with
// case.
//
// # Request paths
//
// NormalizePath turns a request path into the form routes are matched
// against, and rejects paths whose meaning upstreams disagree on. Match
// expects its output, whatever Envoy's own path normalization is set to.
//
// # Cost
//
// Match walks one path trie per host constraint that applies (the
// request's host, each wildcard covering it, and no host), so its cost
// grows with the depth of the path, not with the number of routes, and it
// does not allocate.
package policy
