package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// Scrape reads a Prometheus text endpoint (the prometheus plugin's, the
// apiserver's /metrics) into metric families.
func Scrape(client *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return families, nil
}

// Value is the value of a counter, gauge or untyped metric without labels
// (the Go runtime's go_memstats_*), summed over its series if it has several.
func Value(families map[string]*dto.MetricFamily, name string) (float64, error) {
	f, ok := families[name]
	if !ok {
		return 0, fmt.Errorf("no metric %s", name)
	}
	var sum float64
	for _, m := range f.GetMetric() {
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return sum, nil
}

// HasSeries reports whether metric name has a series with exactly labels.
func HasSeries(families map[string]*dto.MetricFamily, name string, labels map[string]string) bool {
	return slices.ContainsFunc(families[name].GetMetric(), func(m *dto.Metric) bool { return maps.Equal(labelsOf(m), labels) })
}

func labelsOf(m *dto.Metric) map[string]string {
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	return labels
}

// ScrapeValues reads the named metrics from url (see Value).
func ScrapeValues(url string, names ...string) (map[string]float64, error) {
	families, err := Scrape(insecureLoopbackClient, url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, n := range names {
		if out[n], err = Value(families, n); err != nil {
			return nil, fmt.Errorf("%s: %w", url, err)
		}
	}
	return out, nil
}

// Watches is the number of watches open on the apiserver, per resource:
// apiserver_longrunning_requests{verb="WATCH"} from its own /metrics.
func (c *Cluster) Watches() (map[string]int, error) {
	client, err := rest.HTTPClientFor(c.RESTConfig)
	if err != nil {
		return nil, err
	}
	families, err := Scrape(client, c.Server+"/metrics")
	if err != nil {
		return nil, err
	}
	watches := map[string]int{}
	for _, m := range families["apiserver_longrunning_requests"].GetMetric() {
		labels := labelsOf(m)
		if n := int(m.GetGauge().GetValue()); labels["verb"] == "WATCH" && n != 0 {
			watches[labels["resource"]] += n
		}
	}
	return watches, nil
}

// SettledWatches waits until the watches opened since baseline (a Watches
// reading from before a process started) have not changed for 2 s, the
// informers having synced and settled, and returns them (at most 30 s).
func (c *Cluster) SettledWatches(ctx context.Context, baseline map[string]int) (map[string]int, error) {
	var opened map[string]int
	stableSince := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		now, err := c.Watches()
		if err != nil {
			return nil, err
		}
		now = subtract(now, baseline)
		if !maps.Equal(now, opened) {
			opened, stableSince = now, time.Now()
		}
		if len(opened) > 0 && time.Since(stableSince) > 2*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return opened, ctx.Err()
}

// WatchesClosed waits (at most 30 s) until no more watches are open than at
// baseline: a process that was stopped has gone from the apiserver.
func (c *Cluster) WatchesClosed(ctx context.Context, baseline map[string]int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, err := c.Watches()
		if err != nil {
			return err
		}
		left := subtract(now, baseline)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("watches still open after the process stopped: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
