package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name holds a space and parentheses; utime is 250 ticks
	// and stime 50.
	stat := "4242 (sc) ope (gate)) S 1 4242 4242 0 -1 4194560 1032 0 0 0 250 50 0 0 20 0 9 0 123456 1234567 2345 18446744073709551615\n"
	got, err := parseStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 sc S 1", "4242 (sc) S 1 2 3", "4242 (sc) S 1 4242 4242 0 -1 4194560 1032 0 0 0 x 50 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) did not fail", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tscopegate\nVmPeak:\t 1300000 kB\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"
	rss, peak, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 20<<20 || peak != 30<<20 {
		t.Errorf("got rss %d, peak %d; want %d, %d", rss, peak, 20<<20, 30<<20)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t 12 MB\nVmHWM:\t 12 kB\n", "VmRSS:\t 12 kB\n"} {
		if _, _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) did not fail", bad)
		}
	}
}

func TestProcOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Error(err)
	}
	rss, peak, err := memory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Errorf("rss %d, peak %d", rss, peak)
	}
}
