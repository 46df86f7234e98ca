package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is the Watcher's Debounce when it is zero.
const DefaultDebounce = 100 * time.Millisecond

// Watcher reloads a policy file when it changes, or when asked to, and
// reports each new policy or why the file could not be loaded. It watches
// the file's directory rather than the file, so that it sees editors that
// save by writing a new file and renaming it over the old one, and
// Kubernetes ConfigMap volumes, which swap a ..data symlink. When the file
// is itself a symlink, the directory of its target is watched too.
//
// Set File and OnChange, then call Run.
type Watcher struct {
	File string // the policy file
	// Version is the version (Policy.Version) of the policy in use when
	// Run starts: a file with that content is not reported. Empty: Run
	// reports the file as it finds it.
	Version string
	// Debounce is how long the directory must be quiet after a change
	// before the file is read, so that a file written in several steps
	// is read once, complete. Zero means DefaultDebounce.
	Debounce time.Duration
	// OnChange is called with each policy whose content differs from the
	// last one seen, or with the error (a yamlfile.Errors, or an error
	// reading the file) when the new content is not a valid policy. It
	// is called from Run's goroutine, one call at a time.
	OnChange func(*Policy, error)

	once   sync.Once
	reload chan struct{}
}

func (w *Watcher) init() { w.once.Do(func() { w.reload = make(chan struct{}, 1) }) }

// Reload asks Run to read the file now, and to report it even when its
// content has not changed (for SIGHUP). It does not wait.
func (w *Watcher) Reload() {
	w.init()
	select {
	case w.reload <- struct{}{}:
	default: // a reload is already pending
	}
}

// Run watches the file until ctx is done. It reads the file once the watch
// is in place, so that a change made since Version was loaded is not
// missed. It returns an error only when the file's directory cannot be
// watched.
func (w *Watcher) Run(ctx context.Context) error {
	w.init()
	name, err := filepath.Abs(w.File)
	if err != nil {
		return fmt.Errorf("policy: watching %s: %w", w.File, err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watching %s: %w", w.File, err)
	}
	defer fsw.Close()
	dir := filepath.Dir(name)
	if err := fsw.Add(dir); err != nil {
		return fmt.Errorf("policy: watching %s: %w", w.File, err)
	}
	s := &watchState{w: w, fsw: fsw, name: name, dir: dir, last: w.Version}
	s.follow()
	s.load(false)

	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return nil
			}
			if s.concerns(ev.Name) {
				timer.Reset(debounce)
			}
		case _, ok := <-fsw.Errors:
			if !ok {
				return nil
			}
			// Events may have been lost (an overflow): read the file
			// to be sure.
			timer.Reset(debounce)
		case <-timer.C:
			s.follow()
			s.load(false)
		case <-w.reload:
			s.follow()
			s.load(true)
		}
	}
}

// watchState is what one Run knows.
type watchState struct {
	w      *Watcher
	fsw    *fsnotify.Watcher
	name   string // the file, absolute
	dir    string // its directory
	target string // what name resolves to, when it is a symlink
	last   string // the version of the content last reported, or a read error's text
}

// concerns reports whether an event on path may change the policy: the
// file itself, its symlink target, or a Kubernetes ..data swap.
func (s *watchState) concerns(path string) bool {
	return path == s.name || path == s.target ||
		filepath.Dir(path) == s.dir && filepath.Base(path) == "..data"
}

// follow watches the directory of the file's symlink target, and stops
// watching that of a former target.
func (s *watchState) follow() {
	target, err := filepath.EvalSymlinks(s.name)
	if err != nil || target == s.name {
		target = ""
	}
	if target == s.target {
		return
	}
	if old := filepath.Dir(s.target); s.target != "" && old != s.dir {
		s.fsw.Remove(old) // it may be gone with its directory already
	}
	s.target = target
	if dir := filepath.Dir(target); target != "" && dir != s.dir {
		// Unwatchable, the target's edits are still seen when the
		// symlink itself is replaced or on Reload.
		s.fsw.Add(dir)
	}
}

// load reads the file and reports it when its content is new, or always
// when force is set.
func (s *watchState) load(force bool) {
	data, err := os.ReadFile(s.w.File)
	if err != nil {
		if key := err.Error(); force || key != s.last {
			s.last = key
			s.w.OnChange(nil, err)
		}
		return
	}
	v := version(data)
	if !force && v == s.last {
		return
	}
	s.last = v
	p, err := Parse(s.w.File, data)
	s.w.OnChange(p, err)
}
