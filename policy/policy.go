package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

// Default says what a request that no route matches gets.
type Default string

// The values of a policy's default.
const (
	DefaultDeny          Default = "deny"          // refused
	DefaultAuthenticated Default = "authenticated" // allowed with any valid token
)

// Policy is a parsed, validated and compiled policy file. It is safe for
// concurrent use; callers must not modify it or its routes, which the
// compiled matcher shares.
type Policy struct {
	Default Default
	// DryRun is the policy-wide mode: routes that do not set their own
	// mode, and requests that no route matches, are in dry run when it is
	// set (mode: dry_run).
	DryRun  bool
	Routes  []*Route  // in file order
	Issuers []*Issuer // the scopes each issuer grants, as the file declares them
	Tests   []*Test   // the test cases of the file's tests section
	Version string    // first 12 hex digits of the SHA-256 of the file
	File    string

	m   *matcher
	src *yamlfile.File // for Lint's positions
}

// Route is one entry of a policy's routes.
type Route struct {
	Name    string
	Public  bool // no token needed
	Deny    bool // always refused
	Require Requirement
	// DryRun marks a route whose denials are computed and reported but
	// not enforced (mode: dry_run, its own or the policy's).
	DryRun bool

	// The match, normalized: Methods upper case, Hosts lower case, and Path
	// with slashes merged, no trailing slash and literal segments
	// canonicalized as NormalizePath does. Empty Methods or Hosts match any.
	Methods []string
	Hosts   []string
	Path    string
	// Context is the route context the request must carry (match.context):
	// every pair, as Envoy's per-route context_extensions send it. A route
	// with one comes before the same route without (see Match).
	Context map[string]string

	contextPairs []contextPair // Context, in key order, for Match
	Line         int           // line of the route in the file, for messages
}

// Issuer lists the scopes an identity provider can grant. The server does
// not use it: Lint warns of required scopes that no issuer grants, and of
// routes requiring an issuer that the list lacks.
type Issuer struct {
	Issuer string
	Scopes []string
	Line   int // line of the issuer in the file, for messages
}

// Requirement is what a token must carry for a route that is neither public
// nor deny. A Requirement whose lists are all empty asks for any valid
// token.
type Requirement struct {
	AllOf []string // scopes that must all be granted
	AnyOf []string // scopes of which one must be granted, when not empty
	// Issuers lists the issuers whose tokens the route accepts; empty
	// accepts every issuer the server trusts. A client ID or an audience
	// names something only within its issuer, so on a server trusting
	// several issuers a route listing Clients or Audiences needs Issuers.
	Issuers   []string
	Clients   []string // client IDs allowed; empty allows any
	Audiences []string // audiences of which the token must have one; empty allows any
	// Binding is what the token must be bound to, its binding verified:
	// the client's certificate, a DPoP key, or either. Empty accepts a
	// plain bearer token.
	Binding Binding
	// Principals lists patterns of the mTLS peer principals the route
	// accepts (require.principals), such as SPIFFE IDs; empty accepts any
	// peer, and a request without mutual TLS. See PrincipalAllowed.
	Principals []string
	// PrincipalOnly (require.token: false) admits a peer on its principal
	// alone: no token is asked for or looked at. Parse allows it only
	// with Principals and without token requirements.
	PrincipalOnly bool

	required   []string           // AllOf then AnyOf, computed once by Parse
	principals []principalPattern // Principals, parsed once by Parse
}

// Parse parses, validates and compiles the policy in data. name is the
// file name used in error messages. A file with problems yields a
// yamlfile.Errors listing every problem found, or a *yamlfile.Error for a
// file that is not well-formed YAML of the right shape.
func Parse(name string, data []byte) (*Policy, error) {
	p, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	p.Version = version(data)
	p.File = name
	return p, nil
}

// version returns the version of a policy file's content.
func version(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// Load reads and parses the policy file name.
func Load(name string) (*Policy, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return Parse(name, data)
}

// Match returns the route that decides a request, or nil when no route
// matches. path must be normalized by NormalizePath; method and host are
// taken as sent, in any case and the host possibly with a port; ctx is
// the request's route context, nil for none. A route with a match.context
// matches only a request whose context holds every pair of it. A host
// that ParseAuthority rejects matches no route at all: the request must be
// refused, not decided by a route without hosts. An empty host matches
// only routes without hosts. See the package documentation for the
// precedence. Match does not allocate.
//
// Methods are compared without case: HTTP says they are case-sensitive,
// but some upstreams fold them, and a route constraining DELETE must not be
// skipped by a request for "delete". A route listing GET and not HEAD also
// matches HEAD, as servers answer HEAD with their GET handler, unless a
// route listing HEAD has the same path pattern and a host in common.
//
// A host longer than 253 bytes, the longest DNS name, matches no route,
// as any host ParseAuthority rejects: matched against the routes without
// hosts only, a long host under a wildcard route's domain would skip it.
func (p *Policy) Match(method, host, path string, ctx *Context) *Route {
	if p == nil || p.m == nil {
		return nil
	}
	return p.m.match(method, host, path, ctx)
}

// MatchAll returns every route matching a request, in precedence order: the
// first is Match's answer, the others are what it shadows. It is for
// explaining a decision, not for making one.
func (p *Policy) MatchAll(method, host, path string, ctx *Context) []*Route {
	if p == nil || p.m == nil {
		return nil
	}
	return p.m.matchAll(method, host, path, ctx)
}

// ScopesMet reports whether granted satisfies the scope rules: every AllOf
// scope is granted and, when AnyOf is not empty, at least one AnyOf scope
// is. It does not allocate.
func (r *Requirement) ScopesMet(granted []string) bool {
	for _, s := range r.AllOf {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return len(r.AnyOf) == 0 || intersects(r.AnyOf, granted)
}

// MissingScopes returns the AllOf scopes that granted lacks, and whether
// granted lacks every AnyOf scope (when AnyOf has any). It returns nil and
// false when the scopes are met.
func (r *Requirement) MissingScopes(granted []string) (allOf []string, anyOf bool) {
	for _, s := range r.AllOf {
		if !slices.Contains(granted, s) {
			allOf = append(allOf, s)
		}
	}
	return allOf, len(r.AnyOf) > 0 && !intersects(r.AnyOf, granted)
}

// Required returns the scopes to advertise in an RFC 6750 scope="..."
// parameter: AllOf followed by AnyOf. For a route of a parsed policy the
// slice is computed once and shared: callers must not modify it. A
// Requirement built by hand gets a new slice on every call.
func (r *Requirement) Required() []string {
	if r.required != nil || len(r.AllOf)+len(r.AnyOf) == 0 {
		return r.required
	}
	return r.requiredScopes()
}

func (r *Requirement) requiredScopes() []string {
	return append(append([]string(nil), r.AllOf...), r.AnyOf...)
}

// IssuerAllowed reports whether a token issued by iss may use the route:
// Issuers is empty or lists iss, compared exactly as tokens' iss claims
// are. A token without an issuer meets only an empty Issuers.
func (r *Requirement) IssuerAllowed(iss string) bool {
	return len(r.Issuers) == 0 || slices.Contains(r.Issuers, iss)
}

// ClientAllowed reports whether clientID may use the route: Clients is
// empty or lists it.
func (r *Requirement) ClientAllowed(clientID string) bool {
	return len(r.Clients) == 0 || slices.Contains(r.Clients, clientID)
}

// AudienceAllowed reports whether a token for the audiences aud may use the
// route: Audiences is empty or shares one with aud.
func (r *Requirement) AudienceAllowed(aud []string) bool {
	return len(r.Audiences) == 0 || intersects(r.Audiences, aud)
}

func intersects(a, b []string) bool {
	for _, s := range a {
		if slices.Contains(b, s) {
			return true
		}
	}
	return false
}
