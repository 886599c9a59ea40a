package envalias

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// requestCount counts queries that were answered through an alias.
var requestCount = promauto.With(prometheus.DefaultRegisterer).NewCounterVec(prometheus.CounterOpts{
	Namespace: plugin.Namespace,
	Subsystem: pluginName,
	Name:      "requests_total",
	Help:      "Counter of queries rewritten from an environment alias, per server and environment.",
}, []string{"server", "env"})
