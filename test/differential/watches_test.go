package differential

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// TestOneSetOfWatches: Corefile.example serves two listeners (in-cluster and
// VPC-facing) from one server block, so it must hold exactly as many watches
// on the apiserver as upstream with the stock Corefile: the plugins read the
// kubernetes plugin's cache, they never start their own.
func TestOneSetOfWatches(t *testing.T) {
	w := setUp(t)
	upstream := w.watchesOf(t, func() server { return w.startCoreDNS(t, w.upstreamBin, "") })
	example := w.watchesOf(t, func() server { return w.startExample(t) })
	t.Logf("watches on the apiserver: upstream stock %v, ours with Corefile.example %v", upstream, example)
	if fmt.Sprint(upstream) != fmt.Sprint(example) {
		t.Errorf("Corefile.example holds watches %v, upstream stock %v", example, upstream)
	}
	if len(upstream) == 0 {
		t.Error("measured no watches at all: the measurement is broken")
	}
}

// watchesOf starts a server, waits until the watches it opened on the
// apiserver stop changing, and returns them per resource (minus those open
// before it started). It stops the server and waits for its watches to close.
func (w *world) watchesOf(t *testing.T, start func() server) map[string]int {
	t.Helper()
	baseline := w.apiserverWatches(t)
	s := start()
	var opened map[string]int
	stableSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		now := subtract(w.apiserverWatches(t), baseline)
		if fmt.Sprint(now) != fmt.Sprint(opened) {
			opened, stableSince = now, time.Now()
		}
		if len(opened) > 0 && time.Since(stableSince) > 2*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.stop()
	for time.Now().Before(deadline) && len(subtract(w.apiserverWatches(t), baseline)) > 0 {
		time.Sleep(200 * time.Millisecond)
	}
	return opened
}

// apiserverWatches reads apiserver_longrunning_requests{verb="WATCH"} from the
// apiserver's own metrics, per resource.
func (w *world) apiserverWatches(t *testing.T) map[string]int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.cluster.Server+"/metrics", nil)
	httpClient, err := rest.HTTPClientFor(w.cluster.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	watches := map[string]int{}
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		labels, value, _ := strings.Cut(line[len("apiserver_longrunning_requests{"):], "} ")
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || n == 0 {
			continue
		}
		watches[label(labels, "resource")] += int(n)
	}
	return watches
}

func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	value, _, _ := strings.Cut(rest, `"`)
	return value
}

func subtract(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range now {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
