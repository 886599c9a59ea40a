package headlessonly

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// requestCount counts the queries handed to the kubernetes plugin with the headless view.
	requestCount = promauto.With(prometheus.DefaultRegisterer).NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "requests_total",
		Help:      "Counter of queries answered as if their Services were headless.",
	}, []string{"server", "type"})

	// noReadyCount counts Service lookups on that path that found no ready endpoint.
	noReadyCount = promauto.With(prometheus.DefaultRegisterer).NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "no_ready_endpoints_total",
		Help:      "Counter of Service lookups that found no ready endpoint.",
	}, []string{"server"})
)
