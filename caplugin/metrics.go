package caplugin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Challenge results and reasons, the labels of attest_acme_ca_challenges_total.
const (
	resultValid     = "valid"
	resultInvalid   = "invalid"
	resultRetryable = "retryable"

	reasonOK                  = "ok"
	reasonPayload             = "bad_payload"          // payload, attestation object, bundle or kc
	reasonVerifierRejected    = "verifier_rejected"    // the verifier refused the evidence
	reasonEAR                 = "bad_ear"              // signature, nonce, status, key or age of the EAR
	reasonIdentifier          = "rejected_identifier"  // the workload may not have an identifier
	reasonVerifierUnavailable = "verifier_unavailable" // unreachable, slow or a broken answer
	reasonInternal            = "internal"             // our own database or state
)

// Metrics are the CA plugin's Prometheus metrics, registered on a registry
// passed in (never the global one).
type Metrics struct {
	challenges   *prometheus.CounterVec
	verifier     *prometheus.HistogramVec
	certificates *prometheus.CounterVec
}

// NewMetrics registers the plugin's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_acme_ca_challenges_total",
			Help: "device-attest-01 cmw challenges by result (valid, invalid, retryable) and reason.",
		}, []string{"result", "reason"}),
		verifier: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attest_acme_ca_verifier_duration_seconds",
			Help:    "Time the verifier took to answer, by outcome (ok, rejected, error).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"outcome"}),
		certificates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attest_acme_ca_certificates_total",
			Help: "Attested certificates at signing: extended (the EAR added) or refused.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.challenges, m.verifier, m.certificates} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) challenge(result, reason string) {
	if m != nil {
		m.challenges.WithLabelValues(result, reason).Inc()
	}
}

func (m *Metrics) verifierCall(outcome string, d time.Duration) {
	if m != nil {
		m.verifier.WithLabelValues(outcome).Observe(d.Seconds())
	}
}

func (m *Metrics) certificate(result string) {
	if m != nil {
		m.certificates.WithLabelValues(result).Inc()
	}
}
