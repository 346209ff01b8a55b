package verifier

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the verifier's Prometheus metrics.
type Metrics struct {
	appraisals *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

// NewMetrics registers the verifier's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		appraisals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_acme_verifier_appraisals_total",
			Help: "Appraisals by platform and result (affirming, warning, contraindicated, none, error).",
		}, []string{"platform", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attest_acme_verifier_appraisal_duration_seconds",
			Help:    "Time to appraise one piece of evidence and sign the result.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}, []string{"platform"}),
	}
	for _, c := range []prometheus.Collector{m.appraisals, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts one appraisal; a nil Metrics counts nothing.
func (m *Metrics) observe(platform, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.appraisals.WithLabelValues(platform, result).Inc()
	m.latency.WithLabelValues(platform).Observe(d.Seconds())
}
