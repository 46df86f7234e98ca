package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/scopegate/scopegate/internal/yamlfile"
)

// Mix is the traffic of a run: closed-loop requests, sent in proportion to
// their weights, and an optional flood beside them.
type Mix struct {
	Requests []Request
	// Rate, when set, paces Requests at this many a second, open-loop as a
	// flood, rather than as fast as the callers get answers: for traffic
	// that a limit on the server would otherwise measure.
	Rate  int
	Flood *Flood
}

// Flood is open-loop traffic sent at a fixed rate beside a mix's requests,
// whatever the server's pace, and reported apart from them: a flood of
// tokens naming unknown keys, say, while the valid traffic is measured.
type Flood struct {
	Rate     int // requests per second
	Requests []Request
}

// Request is one kind of CheckRequest in a mix.
type Request struct {
	Method, Host, Path string
	// Tokens gives the bearer token of each request; nil sends no
	// authorization header.
	Tokens *Tokens
	// Peer is the request's source address, as Envoy reports it; empty
	// means 127.0.0.1.
	Peer   string
	Weight int // relative to the other requests; 0 counts as 1
	Expect Expect
}

// Expect is the decision a request should get. Any other is counted as an
// error.
type Expect string

// The decisions a request can expect.
const (
	ExpectAllow Expect = "allow" // the default
	ExpectDeny  Expect = "deny"
	ExpectAny   Expect = "any"
)

// Tokens is a pool of bearer tokens that requests take in turn, shared by
// every caller. It holds whole authorization header values, so that
// taking one does not allocate.
type Tokens struct {
	headers []string
	unique  bool
	next    atomic.Int64
}

// RoundRobin returns a pool that hands out tokens in turn, over and over.
func RoundRobin(tokens []string) *Tokens { return newTokens(tokens, false) }

// Unique returns a pool that hands out each token once: a run that takes
// them all ends there, so that no token is sent twice.
func Unique(tokens []string) *Tokens { return newTokens(tokens, true) }

func newTokens(tokens []string, unique bool) *Tokens {
	t := &Tokens{headers: make([]string, len(tokens)), unique: unique}
	for i, tok := range tokens {
		t.headers[i] = "Bearer " + tok
	}
	return t
}

// Len returns the number of tokens in the pool.
func (t *Tokens) Len() int { return len(t.headers) }

// take returns the authorization header value of the next token, or false
// when a unique pool has run out.
func (t *Tokens) take() (string, bool) {
	n := t.next.Add(1) - 1
	if t.unique {
		if n >= int64(len(t.headers)) {
			return "", false
		}
		return t.headers[n], true
	}
	return t.headers[n%int64(len(t.headers))], true
}

// check reports what makes m unusable.
func (m *Mix) check() error {
	if m == nil || len(m.Requests) == 0 {
		return fmt.Errorf("the mix has no requests")
	}
	if err := checkRequests("requests", m.Requests); err != nil {
		return err
	}
	if m.Rate < 0 {
		return fmt.Errorf("the rate must not be negative")
	}
	if f := m.Flood; f != nil {
		if f.Rate <= 0 {
			return fmt.Errorf("flood: the rate must be positive")
		}
		if len(f.Requests) == 0 {
			return fmt.Errorf("flood: no requests")
		}
		return checkRequests("flood.requests", f.Requests)
	}
	return nil
}

func checkRequests(at string, rs []Request) error {
	for i, r := range rs {
		switch {
		case r.Method == "" || r.Path == "":
			return fmt.Errorf("%s[%d]: the method and the path are required", at, i)
		case r.Weight < 0:
			return fmt.Errorf("%s[%d]: the weight must not be negative", at, i)
		case r.Tokens != nil && r.Tokens.Len() == 0:
			return fmt.Errorf("%s[%d]: the token pool is empty", at, i)
		}
		switch r.Expect {
		case "", ExpectAllow, ExpectDeny, ExpectAny:
		default:
			return fmt.Errorf("%s[%d]: expect is %q, not allow, deny or any", at, i, r.Expect)
		}
	}
	return nil
}

// order returns the indexes of rs, each repeated as often as its weight,
// interleaved so that a caller going through them in turn sends a steady
// mix rather than runs of one request.
func order(rs []Request) []int {
	total := 0
	for _, r := range rs {
		total += max(r.Weight, 1)
	}
	seq := make([]int, 0, total)
	sent := make([]int, len(rs))
	for len(seq) < total {
		// Smooth weighted round-robin: the request furthest behind its
		// share goes next.
		best, lag := 0, -1.0
		for i, r := range rs {
			w := float64(max(r.Weight, 1))
			if l := w*float64(len(seq)+1)/float64(total) - float64(sent[i]); l > lag {
				best, lag = i, l
			}
		}
		sent[best]++
		seq = append(seq, best)
	}
	return seq
}

// mixFile is a mix as a YAML file writes it.
type mixFile struct {
	// Host is the :authority of the requests that name none.
	Host     string        `yaml:"host"`
	Requests []requestFile `yaml:"requests"`
	Flood    *struct {
		Rate     int           `yaml:"rate"`
		Requests []requestFile `yaml:"requests"`
	} `yaml:"flood"`
	Tokens map[string]tokensFile `yaml:"tokens"`
}

type requestFile struct {
	Method string `yaml:"method"` // default GET
	Host   string `yaml:"host"`
	Path   string `yaml:"path"`
	Tokens string `yaml:"tokens"` // a pool of the tokens section; empty sends none
	Weight int    `yaml:"weight"`
	Expect string `yaml:"expect"`
}

type tokensFile struct {
	File  string `yaml:"file"`  // one token a line, relative to the mix file
	Order string `yaml:"order"` // round-robin (the default) or unique
}

// loadMix reads a mix file.
func loadMix(name string) (*Mix, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var mf mixFile
	f, err := yamlfile.Decode(name, data, &mf)
	if err != nil {
		return nil, err
	}
	var errs yamlfile.Errors
	pools := make(map[string]*Tokens, len(mf.Tokens))
	for pool, tf := range mf.Tokens {
		at := "$.tokens." + pool
		if tf.File == "" {
			errs = append(errs, f.Errorf(at+".file", "the token file is required"))
			continue
		}
		file := tf.File
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(name), file)
		}
		tokens, err := readTokens(file)
		if err != nil {
			errs = append(errs, f.Errorf(at+".file", "%v", err))
			continue
		}
		switch tf.Order {
		case "", "round-robin":
			pools[pool] = RoundRobin(tokens)
		case "unique":
			pools[pool] = Unique(tokens)
		default:
			errs = append(errs, f.Errorf(at+".order", "is %q, not round-robin or unique", tf.Order))
		}
	}
	requests := func(at string, rfs []requestFile) []Request {
		var rs []Request
		for i, rf := range rfs {
			at := at + "[" + strconv.Itoa(i) + "]"
			r := Request{
				Method: strings.ToUpper(rf.Method), Host: rf.Host, Path: rf.Path,
				Weight: rf.Weight, Expect: Expect(rf.Expect),
			}
			if r.Method == "" {
				r.Method = "GET"
			}
			if r.Host == "" {
				r.Host = mf.Host
			}
			if rf.Tokens != "" {
				if r.Tokens = pools[rf.Tokens]; r.Tokens == nil {
					if _, declared := mf.Tokens[rf.Tokens]; !declared {
						errs = append(errs, f.Errorf(at+".tokens", "no token pool %q in the tokens section", rf.Tokens))
					}
				}
			}
			if r.Path == "" {
				errs = append(errs, f.Errorf(at+".path", "the path is required"))
			}
			if r.Weight < 0 {
				errs = append(errs, f.Errorf(at+".weight", "must not be negative"))
			}
			switch r.Expect {
			case "", ExpectAllow, ExpectDeny, ExpectAny:
			default:
				errs = append(errs, f.Errorf(at+".expect", "is %q, not allow, deny or any", r.Expect))
			}
			rs = append(rs, r)
		}
		return rs
	}
	m := &Mix{Requests: requests("$.requests", mf.Requests)}
	if len(m.Requests) == 0 {
		errs = append(errs, f.Errorf("$.requests", "at least one request is required"))
	}
	if fl := mf.Flood; fl != nil {
		m.Flood = &Flood{Rate: fl.Rate, Requests: requests("$.flood.requests", fl.Requests)}
		if fl.Rate <= 0 {
			errs = append(errs, f.Errorf("$.flood.rate", "must be positive"))
		}
		if len(fl.Requests) == 0 {
			errs = append(errs, f.Errorf("$.flood.requests", "at least one request is required"))
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// readTokens reads a token file: one token a line; blank lines and lines
// starting with # are skipped.
func readTokens(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var tokens []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", name)
	}
	return tokens, nil
}
