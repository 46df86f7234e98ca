package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: Linux reports
// them in USER_HZ clock ticks, which is 100 on every architecture Go runs
// on, whatever the kernel's own tick rate.
const userHZ = 100

// cpuTime returns the CPU time, user and system, that process pid has used
// in all its threads.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	d, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return d, nil
}

// parseStat returns utime + stime from the contents of /proc/PID/stat.
// The command name, field 2, is in parentheses and may itself hold spaces
// and parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	// f[0] is field 3, the state; utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * (time.Second / userHZ), nil
}

// memory returns the resident set size of process pid and its peak, in
// bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	rss, peak, err = parseStatus(b)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return rss, peak, nil
}

// parseStatus returns VmRSS and VmHWM, in bytes, from the contents of
// /proc/PID/status.
func parseStatus(b []byte) (rss, peak int64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		var dst *int64
		switch name {
		case "VmRSS":
			dst = &rss
		case "VmHWM":
			dst = &peak
		default:
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(value), " kB")
		n, err := strconv.ParseInt(kb, 10, 64)
		if !ok || err != nil {
			return 0, 0, fmt.Errorf("%s is %q, not a size in kB", name, strings.TrimSpace(value))
		}
		*dst = n << 10
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmRSS and VmHWM")
	}
	return rss, peak, nil
}
