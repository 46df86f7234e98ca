package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

// policyFile is the policy file as written.
type policyFile struct {
	Version *int         `yaml:"version"`
	Default string       `yaml:"default"`
	Mode    string       `yaml:"mode"`
	Issuers []issuerFile `yaml:"issuers"`
	Routes  []routeFile  `yaml:"routes"`
	Tests   []testFile   `yaml:"tests"`
}

type issuerFile struct {
	Issuer string   `yaml:"issuer"`
	Scopes []string `yaml:"scopes"`
}

type routeFile struct {
	Name    string       `yaml:"name"`
	Match   *matchFile   `yaml:"match"`
	Public  bool         `yaml:"public"`
	Deny    bool         `yaml:"deny"`
	Require *requireFile `yaml:"require"`
	Mode    string       `yaml:"mode"`
}

type matchFile struct {
	Hosts   []string          `yaml:"hosts"`
	Methods []string          `yaml:"methods"`
	Path    string            `yaml:"path"`
	Context map[string]string `yaml:"context"`
}

type requireFile struct {
	Scopes    *scopesFile `yaml:"scopes"`
	Issuers   []string    `yaml:"issuers"`
	Clients   []string    `yaml:"clients"`
	Audiences []string    `yaml:"audiences"`
	Binding   Binding     `yaml:"binding"`
	// Principals and Token are read by checker.principals.
	Principals []string `yaml:"principals"`
	Token      *bool    `yaml:"token"`
}

type scopesFile struct {
	AllOf []string `yaml:"all_of"`
	AnyOf []string `yaml:"any_of"`
}

// checker collects the problems of one file.
type checker struct {
	f    *yamlfile.File
	errs yamlfile.Errors
}

// line returns the line of the field at path, 0 when it is not in the file.
func (c *checker) line(path string) int {
	return c.f.Line(path)
}

func (c *checker) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, c.f.Errorf(path, format, args...))
}

func parse(name string, data []byte) (*Policy, error) {
	var doc policyFile
	f, err := yamlfile.Decode(name, data, &doc)
	if f == nil {
		return nil, err
	}
	c := &checker{f: f}
	p := &Policy{Default: DefaultDeny}

	switch {
	case doc.Version == nil:
		c.errorf("$.version", "is required and must be 1")
	case *doc.Version != 1:
		c.errorf("$.version", "is %d; this scopegate reads version 1", *doc.Version)
	}
	switch d := Default(doc.Default); d {
	case "", DefaultDeny:
	case DefaultAuthenticated:
		p.Default = d
	default:
		c.errorf("$.default", "is %q; it must be %q or %q", d, DefaultDeny, DefaultAuthenticated)
	}
	p.DryRun = c.mode("$.mode", doc.Mode, false)
	p.Issuers = c.issuers(doc.Issuers)

	names := make(map[string]*Route, len(doc.Routes))
	var compiled []*entry
	for i := range doc.Routes {
		e := c.route(i, &doc.Routes[i], p.DryRun)
		r := e.route
		p.Routes = append(p.Routes, r)
		if first, dup := names[r.Name]; dup && r.Name != "" {
			c.errorf(routePath(i)+".name", "duplicate route name %q; the first is at line %d", r.Name, first.Line)
		} else {
			names[r.Name] = r
		}
		if e.ok {
			compiled = append(compiled, e)
		}
	}

	// Routes whose match has errors are left out of the matcher, but the
	// others, with errors elsewhere or none, are still compiled so that
	// their ties are reported in the same pass.
	m, conflicts := compile(compiled)
	for _, cf := range conflicts {
		c.errs = append(c.errs, cf.error(f))
	}
	p.Tests = c.tests(doc.Tests)
	if err := c.err(); err != nil {
		return nil, err
	}
	p.m, p.src = m, f
	return p, nil
}

// err returns the problems of the file, those of decoding it included, in
// the order of the file, or nil.
func (c *checker) err() error {
	return c.f.Err(c.errs)
}

// The values of a mode, per route and policy-wide.
const (
	modeEnforce = "enforce"
	modeDryRun  = "dry_run"
)

// mode reports whether the mode at path is dry run; def when it is absent.
func (c *checker) mode(path, mode string, def bool) bool {
	switch mode {
	case "":
		return def
	case modeEnforce:
		return false
	case modeDryRun:
		return true
	}
	c.errorf(path, "is %q; it must be %q or %q", mode, modeEnforce, modeDryRun)
	return def
}

// issuers validates the issuers section.
func (c *checker) issuers(files []issuerFile) []*Issuer {
	var out []*Issuer
	for i, isf := range files {
		at := fmt.Sprintf("$.issuers[%d]", i)
		is := &Issuer{Issuer: isf.Issuer, Line: c.line(at)}
		if isf.Issuer == "" {
			c.errorf(at+".issuer", "is required")
		}
		for _, prev := range out {
			if prev.Issuer == is.Issuer && is.Issuer != "" {
				c.errorf(at+".issuer", "issuer %q is listed twice; the first is at line %d", is.Issuer, prev.Line)
			}
		}
		if len(isf.Scopes) == 0 {
			c.errorf(at+".scopes", "is required: list the scopes the issuer grants")
		} else {
			is.Scopes = c.list(at+".scopes", isf.Scopes, "", checkScope)
		}
		out = append(out, is)
	}
	return out
}

func routePath(i int) string { return fmt.Sprintf("$.routes[%d]", i) }

// entry is a route with what compiling it needs.
type entry struct {
	route *Route
	index int       // in the file's routes
	segs  []segment // the path pattern
	ok    bool      // its match has no errors: the route can be compiled
}

// route validates and converts the i-th route of the file. dryRun is the
// policy-wide mode.
func (c *checker) route(i int, rf *routeFile, dryRun bool) *entry {
	at := routePath(i)
	r := &Route{
		Name:   rf.Name,
		Public: rf.Public,
		Deny:   rf.Deny,
		Line:   c.line(at),
	}
	if rf.Public {
		if rf.Mode != "" {
			c.errorf(at+".mode", "a public route denies nothing, so it has no mode")
		}
	} else {
		r.DryRun = c.mode(at+".mode", rf.Mode, dryRun)
	}
	e := &entry{route: r, index: i}

	switch {
	case rf.Name == "":
		c.errorf(at+".name", "is required")
	case !isRouteName(rf.Name):
		c.errorf(at+".name", "%q may use only letters, digits and _.:- (it becomes a metric label)", rf.Name)
	}

	nerrs := len(c.errs)
	if rf.Match == nil {
		c.errorf(at+".match", "is required")
	} else {
		segs, path, err := parsePattern(rf.Match.Path)
		if err != nil {
			c.errorf(at+".match.path", "%v", err)
		}
		e.segs, r.Path = segs, path
		r.Methods = c.list(at+".match.methods", rf.Match.Methods, "match any method", func(s string) (string, error) {
			if !isToken(s) {
				return "", fmt.Errorf("%q is not an HTTP method", s)
			}
			return strings.ToUpper(s), nil
		})
		r.Hosts = c.list(at+".match.hosts", rf.Match.Hosts, "match any host", parseHost)
		r.Context = c.matchContext(at+".match.context", rf.Match.Context)
		r.contextPairs = pairsOf(r.Context)
	}
	e.ok = len(c.errs) == nerrs && !c.f.Failed(at+".match")

	if rf.Public && rf.Deny {
		c.errorf(at+".deny", "a route cannot be both public and deny")
	}
	if rq := rf.Require; rq != nil {
		switch {
		case rf.Public:
			c.errorf(at+".require", "a public route admits requests without a token, so it cannot require anything")
		case rf.Deny:
			c.errorf(at+".require", "a deny route refuses every request, so it cannot require anything")
		}
		if rq.Scopes != nil {
			r.Require.AllOf = c.list(at+".require.scopes.all_of", rq.Scopes.AllOf, "require no scope", checkScope)
			r.Require.AnyOf = c.list(at+".require.scopes.any_of", rq.Scopes.AnyOf, "require no scope", checkScope)
		}
		for j, iss := range rq.Issuers {
			// Refused rather than dropped as a repeated client is: a
			// repeat usually stands where another issuer was meant.
			if first := slices.Index(rq.Issuers[:j], iss); first >= 0 && iss != "" {
				c.errorf(fmt.Sprintf("%s.require.issuers[%d]", at, j), "issuer %q is listed twice; the first is issuers[%d]", iss, first)
			}
		}
		r.Require.Issuers = c.list(at+".require.issuers", rq.Issuers, "allow any issuer", nil)
		r.Require.Clients = c.list(at+".require.clients", rq.Clients, "allow any client", nil)
		r.Require.Audiences = c.list(at+".require.audiences", rq.Audiences, "allow any audience", nil)
		if err := rq.Binding.Check(); err != nil {
			c.errorf(at+".require.binding", "%v", err)
		} else {
			r.Require.Binding = rq.Binding
		}
		c.principals(at+".require", rq, &r.Require)
		if len(r.Require.AllOf)+len(r.Require.AnyOf) > 0 {
			r.Require.required = r.Require.requiredScopes()
		}
	}
	return e
}

func checkScope(s string) (string, error) {
	if !IsScopeToken(s) {
		return "", fmt.Errorf("%q is not a scope: RFC 6749 allows printable ASCII except space, '\"' and '\\'", s)
	}
	return s, nil
}

// list checks and normalizes the items of the list at path with check (nil
// for no check beyond non-emptiness), and drops duplicates. An empty list
// written out is an error, whose message says what leaving the list out
// does: "clients: []" reads as "no client", yet it could only mean "any".
func (c *checker) list(path string, items []string, ifAbsent string, check func(string) (string, error)) []string {
	if items == nil {
		return nil
	}
	if len(items) == 0 {
		c.errorf(path, "is empty; leave it out to %s", ifAbsent)
		return nil
	}
	out := make([]string, 0, len(items))
	for j, s := range items {
		at := fmt.Sprintf("%s[%d]", path, j)
		if s == "" {
			c.errorf(at, "is empty")
			continue
		}
		if check != nil {
			var err error
			if s, err = check(s); err != nil {
				c.errorf(at, "%v", err)
				continue
			}
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
