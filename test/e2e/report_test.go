package e2e

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// report collects one row per check and prints them as a table at the end,
// whatever happened in between: a check that fails is a FAIL row and the
// next check still runs; a set-up step that fails ends the run, and the
// checks it prevented are not listed as passed.
// Its methods run on the test's goroutine (checks and cleanups).
type report struct {
	rows    []row
	skipped string   // why the run did not happen
	notes   []string // lines printed under the table
}

type row struct {
	name, result, detail string
	took                 time.Duration
}

// check runs fn as the check called name, records PASS with fn's detail or
// FAIL with its error (also reported to t), and says whether it passed.
func (r *report) check(t *testing.T, name string, fn func() (string, error)) bool {
	t.Helper()
	t.Logf("check: %s", name)
	start := time.Now()
	detail, err := fn()
	took := time.Since(start)
	result := "PASS"
	if err != nil {
		result, detail = "FAIL", err.Error()
		t.Errorf("FAIL %s: %v", name, err)
	} else {
		t.Logf("PASS %s: %s", name, detail)
	}
	r.rows = append(r.rows, row{name, result, detail, took})
	return err == nil
}

func (r *report) print(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "==== e2e: laptop -> gateway (resolver policies) -> clusters stg and prd, in network namespaces ====")
	if r.skipped != "" {
		fmt.Fprintf(w, "SKIPPED, nothing was checked: %s\n", r.skipped)
		fmt.Fprintln(w, "==== 0 passed, 0 failed, skipped ====")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tRESULT\tCHECK\tTIME\tDETAIL")
	passed, failed := 0, 0
	for i, row := range r.rows {
		if row.result == "PASS" {
			passed++
		} else {
			failed++
		}
		// A failure's detail can span lines (dig output): keep the
		// table one line per check and indent the rest below it.
		first, rest, _ := strings.Cut(row.detail, "\n")
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1fs\t%s\n", i+1, row.result, row.name, row.took.Seconds(), first)
		if rest != "" && row.result != "PASS" {
			for _, line := range strings.Split(rest, "\n") {
				fmt.Fprintf(tw, "\t\t\t\t  %s\n", line)
			}
		}
	}
	tw.Flush()
	if len(r.rows) == 0 {
		failed++
		fmt.Fprintln(w, "no check ran")
	}
	for _, n := range r.notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "==== %d passed, %d failed ====\n", passed, failed)
}
